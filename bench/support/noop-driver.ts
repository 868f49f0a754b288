import type {
  ApplyOutcome,
  Capacity,
  DriverCapabilities,
  InstanceSpec,
  Observation,
  RuntimeDriver,
} from '../../packages/server/src/drivers/driver.js';
import { nothingObserved } from '../../packages/server/src/drivers/driver.js';

const GIB = 1024 ** 3;

/**
 * A benchmark fake, not a driver: it runs nothing. It keeps each instance's spec in memory and
 * reports it existing, running, ready and converged the moment apply() has seen it, so a
 * benchmark measures Kumo's reconcile loop (API, store, bus, agent) rather than PostgreSQL's
 * start-up. Never crashes, never busy, no logs, no backups; forgets everything on restart.
 * Capacity is large and constant, so placement never refuses a plan for lack of room.
 */
export class NoopDriver implements RuntimeDriver {
  readonly capabilities: DriverCapabilities = {
    supportsStop: true,
    supportsLogs: false,
    supportsReload: true,
    supportsBackup: false,
  };
  private readonly recorded = new Map<string, { spec: InstanceSpec; port: number }>();
  private nextPort = 40_000;

  async observe(spec: InstanceSpec): Promise<Observation> {
    const held = this.recorded.get(spec.uid);
    if (!held) return nothingObserved('no instance yet');
    const converged = JSON.stringify(held.spec) === JSON.stringify(spec);
    return {
      exists: true,
      running: !held.spec.stopped,
      ready: !held.spec.stopped,
      configApplied: converged,
      aclApplied: converged,
      credentialsApplied: converged,
      credentialsVersion: held.spec.credentials.version,
      crashed: false,
      endpoint: { host: '127.0.0.1', port: held.port },
      usage: { storageBytes: 0 },
      message: converged ? '' : 'the spec changed since the last apply',
    };
  }

  async apply(spec: InstanceSpec): Promise<ApplyOutcome> {
    const held = this.recorded.get(spec.uid);
    if (!held) {
      this.recorded.set(spec.uid, { spec, port: this.nextPort++ });
      return { actions: [{ reason: 'Created', message: 'instance recorded (no-op driver)' }] };
    }
    if (JSON.stringify(held.spec) === JSON.stringify(spec)) return { actions: [] };
    held.spec = spec;
    return { actions: [{ reason: 'Reconfigured', message: 'spec recorded (no-op driver)' }] };
  }

  async delete(uid: string): Promise<void> {
    this.recorded.delete(uid);
  }

  busy(): boolean {
    return false;
  }

  async instances(): Promise<string[]> {
    return [...this.recorded.keys()];
  }

  async sweep(): Promise<number> {
    return 0;
  }

  async logs(): Promise<string[]> {
    return [];
  }

  async followLogs(_uid: string, _onLine: (line: string) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  onProcessExit(): () => void {
    return () => undefined;
  }

  async capacity(): Promise<Capacity> {
    return {
      cpus: 64,
      memoryBytes: 1024 * GIB,
      diskFreeBytes: 10_000 * GIB,
      freePorts: 20_000 - this.recorded.size,
      instances: this.recorded.size,
    };
  }

  async close(): Promise<void> {}
}
