import { type Condition, setCondition } from '@kumo/api';
import type { Bus } from '../bus/bus.js';
import { Controller, type ControllerOptions } from '../controllers/runtime/controller.js';
import type { RuntimeDriver } from '../drivers/driver.js';
import type { EngineCatalog } from '../engines/engine-catalog.js';
import type { CrashPoints } from '../faults/crash-points.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { KUMO_VERSION } from '../version.js';
import type { AgentClient } from './agent-client.js';
import { DatabaseReconciler, type DatabaseReconcilerOptions } from './database-reconciler.js';
import { BackupReconciler } from './backup-reconciler.js';
import { BackupRunner } from './backup-runner.js';
import type { ObjectStore } from '../backups/object-store.js';
import type { TerminalError } from '../controllers/runtime/reconciler.js';
import type { ResourceKey } from '../store/resource-rows.js';

const HEARTBEAT_MS = 15_000;
/** How often the object store is swept of what interrupted uploads left behind. */
const SWEEP_INTERVAL_MS = 3600_000;
/**
 * Leftovers untouched this long are swept. Uploads in flight in this process are never swept;
 * the age protects those of anything else writing under the same store prefix (docs/backups.md).
 */
const LEFTOVER_AGE_MS = 3600_000;

export interface AgentDeps {
  client: AgentClient;
  /** Where backups go; without one the agent takes no backups. */
  objectStore?: ObjectStore;
  driver: RuntimeDriver;
  catalog: EngineCatalog;
  bus: Bus;
  metrics: Metrics;
  logger: Logger;
  /** Test-only fault injection; default: none. */
  crashPoints?: CrashPoints;
}

export interface AgentOptions extends ControllerOptions, DatabaseReconcilerOptions {}

/**
 * The agent of one target: runs the Database reconciler on the controller runtime, turns the
 * driver's process-exit notices into immediate reconciles, and reports itself on the Target
 * (Ready with a heartbeat). stop() leaves every managed server running.
 */
export class Agent {
  private readonly controllers: Controller[];
  private readonly controller: Controller;
  private readonly reconciler: DatabaseReconciler;
  /** Takes, verifies and restores backups; undefined without an object store. */
  readonly backups: BackupRunner | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private readonly id = `agent-${process.pid}`;

  constructor(
    readonly target: string,
    private readonly deps: AgentDeps,
    options: AgentOptions = {},
  ) {
    this.backups = deps.objectStore
      ? new BackupRunner(deps.client, deps.driver, deps.catalog, deps.objectStore, deps.crashPoints)
      : undefined;
    this.reconciler = new DatabaseReconciler(deps.client, deps.driver, deps.catalog, target, this.backups, {
      ...(options.crashLoopRetryMs !== undefined ? { crashLoopRetryMs: options.crashLoopRetryMs } : {}),
    });
    const runtime = (kind: string) => ({
      bus: deps.bus,
      metrics: deps.metrics,
      logger: deps.logger,
      listKeys: () => deps.client.listKeys(kind),
      reportTerminalError: (key: ResourceKey, err: TerminalError) =>
        deps.client.reportTerminalError(key, err),
    });
    this.controller = new Controller(this.reconciler, runtime('Database'), options);
    this.controllers = [this.controller];
    if (this.backups) {
      this.controllers.push(
        new Controller(new BackupReconciler(deps.client, this.backups, target), runtime('Backup'), options),
      );
    }
  }

  async start(): Promise<void> {
    const leftovers = await this.deps.driver.sweep().catch((err: unknown) => {
      this.deps.logger.warn({ err: String(err) }, 'could not remove what interrupted steps left behind');
      return 0;
    });
    if (leftovers) this.deps.logger.info({ leftovers }, 'removed what interrupted steps left behind');
    if (this.backups) {
      const swept = await this.backups.sweepScratch().catch((err: unknown) => {
        this.deps.logger.warn(
          { err: String(err) },
          'could not remove scratch instances of interrupted verifications',
        );
        return 0;
      });
      if (swept) this.deps.logger.info({ swept }, 'removed scratch instances of interrupted verifications');
    }
    this.unwatch = this.deps.driver.onProcessExit((uid) => {
      const key = this.reconciler.keyOf(uid);
      if (key) this.controller.enqueue(key);
    });
    for (const controller of this.controllers) controller.start();
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    if (this.deps.objectStore) {
      void this.sweep(this.deps.objectStore);
      this.sweeper = setInterval(() => void this.sweep(this.deps.objectStore!), SWEEP_INTERVAL_MS);
      this.sweeper.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.sweeper);
    this.unwatch?.();
    await Promise.all(this.controllers.map((c) => c.stop()));
    await this.deps.driver.close();
  }

  /** Removes what uploads that Kumo stopped in the middle of (a crash, a kill) left in the store. */
  private async sweep(store: ObjectStore): Promise<void> {
    try {
      const removed = await store.sweep(new Date(Date.now() - LEFTOVER_AGE_MS));
      if (removed > 0)
        this.deps.logger.info(
          { removed, store: store.description },
          'removed what interrupted backup uploads left in the object store',
        );
    } catch (err) {
      this.deps.logger.warn(
        { err: String(err), store: store.description },
        'could not remove what interrupted backup uploads left in the object store',
      );
    }
  }

  private async beat(): Promise<void> {
    try {
      await this.deps.client.updateStatus({ kind: 'Target', project: '', name: this.target }, (current) => ({
        ...current.status,
        phase: 'Ready',
        agent: { id: this.id, version: KUMO_VERSION, lastHeartbeat: new Date().toISOString() },
        conditions: setCondition(current.status.conditions as Condition[] | undefined, {
          type: 'Ready',
          status: 'True',
          reason: 'AgentConnected',
          message: `engines: ${this.deps.catalog
            .list()
            .map((e) => `${e.engine} ${e.versions.join('/')}`)
            .join(', ')}`,
        }),
      }));
    } catch (err) {
      this.deps.logger.warn({ err: String(err) }, 'agent heartbeat failed');
    }
  }
}
