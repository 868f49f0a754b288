import { type Condition, type Resource, findCondition, setCondition } from '@kumo/api';
import { LeaseHeldError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { LeaseInfo, LeaseStore } from '../store/target-leases.js';
import type { StatusWriter } from './runtime/status-writer.js';

export interface TargetHealthOptions {
  /** How often leases are checked. Default: 2 s. */
  intervalMs?: number;
}

/**
 * Never a stale Ready: when a target's agent stops renewing its lease (the heartbeat timeout is
 * the lease's time-to-live), the target goes Ready=False (AgentLost) and each of its databases
 * Ready=Unknown (TargetUnreachable, phase Unknown) — their servers may well still run; nobody can
 * see them. Each write is made only while the lease is still expired, under its row lock, so an
 * agent that comes back writes its own status after it. Every control-plane replica runs this; the
 * writes are the same whoever makes them, and unchanged status is not written again.
 */
export class TargetHealth {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly intervalMs: number;

  constructor(
    private readonly store: ResourceStore,
    private readonly status: StatusWriter,
    private readonly leases: LeaseStore,
    private readonly logger: Logger,
    options: TargetHealthOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 2000;
  }

  start(): void {
    const tick = () => {
      this.running = this.check()
        .catch((err: unknown) => this.logger.warn({ err: String(err) }, 'target health check failed'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.intervalMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass over every target. */
  async check(): Promise<void> {
    const leases = new Map((await this.leases.all()).map((l) => [l.target, l]));
    const targets = await this.store.keys('Target');
    for (const key of targets) {
      const lease = leases.get(key.name);
      if (!lease) await this.noAgentYet(key.name);
      else if (lease.expired) await this.lost(key.name, lease);
    }
    // A deleted target's lease (and with it its agent's gateway secret) goes with it.
    const existing = new Set(targets.map((t) => t.name));
    for (const [target, lease] of leases)
      if (lease.expired && !existing.has(target)) await this.leases.forget(target);
  }

  private async noAgentYet(target: string): Promise<void> {
    await this.status.update({ kind: 'Target', project: '', name: target }, (current) =>
      findCondition(current.status.conditions as Condition[] | undefined, 'Ready')
        ? current.status
        : {
            ...current.status,
            phase: 'Pending',
            conditions: setCondition(undefined, {
              type: 'Ready',
              status: 'False',
              reason: 'NoAgent',
              message: `No agent has connected for this target yet: start one with kumo agent --target ${target}.`,
            }),
          },
    );
  }

  private async lost(target: string, lease: LeaseInfo): Promise<void> {
    const guard = {
      guard: (client: Parameters<LeaseStore['checkExpired']>[0]) => this.leases.checkExpired(client, target),
    };
    const since = lease.renewedAt.toISOString();
    try {
      const written = await this.status.update(
        { kind: 'Target', project: '', name: target },
        (current) => ({
          ...current.status,
          phase: 'Error',
          conditions: setCondition(current.status.conditions as Condition[] | undefined, {
            type: 'Ready',
            status: 'False',
            reason: 'AgentLost',
            message: `Agent ${lease.holder} has not renewed its lease since ${since}; its databases cannot be observed. Start the agent again (it adopts the running servers).`,
          }),
        }),
        undefined,
        guard,
      );
      if (!written) return;
      for (const key of await this.store.keys('Database')) {
        const db = await this.store.get(key);
        if (!db || (db.spec as { target?: string }).target !== target) continue;
        await this.status.update(key, (current) => unreachable(current, target, since), observed(db), guard);
      }
    } catch (err) {
      if (!(err instanceof LeaseHeldError)) throw err; // the agent came back meanwhile: its status stands
    }
  }
}

function observed(db: Resource): number {
  return (db.status as { observedGeneration?: number }).observedGeneration ?? 0;
}

function unreachable(db: Resource, target: string, since: string): Record<string, unknown> {
  if (db.status.phase === 'Unknown') return db.status;
  return {
    ...db.status,
    phase: 'Unknown',
    conditions: setCondition(db.status.conditions as Condition[] | undefined, {
      type: 'Ready',
      status: 'Unknown',
      reason: 'TargetUnreachable',
      message: `The agent of target ${target} is unreachable (no heartbeat since ${since}); the server's state cannot be observed.`,
    }),
  };
}
