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
import { DatabaseUserReconciler } from './database-user-reconciler.js';
import { BackupRunner } from './backup-runner.js';
import type { ObjectStore } from '../backups/object-store.js';
import type { TerminalError } from '../controllers/runtime/reconciler.js';
import type { ResourceKey } from '../store/resource-rows.js';
import { LeaseHeldError, LeaseLostError } from '../errors.js';
import type { UsageReporter } from '../metering/usage-reporter.js';
import type { GatewayAddress, Lease } from '../store/target-leases.js';

/** How often the target's status (heartbeat, engines, capacity) is written. */
const HEARTBEAT_MS = 15_000;
/** How long a lease lasts unless renewed: the heartbeat timeout after which a target is unreachable. */
export const DEFAULT_LEASE_TTL_MS = 15_000;
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
  /** Who holds the lease: stable for one agent installation (its data directory), unique across hosts. */
  holder: string;
  /** Where the control plane reaches this agent for logs and local backup files; none: in-process only. */
  gateway?: GatewayAddress;
  /** Test-only fault injection; default: none. */
  crashPoints?: CrashPoints;
  /** Meters what runs on the target and reports it while serving; without: nothing is metered. */
  usage?: UsageReporter;
}

export interface AgentOptions extends ControllerOptions, DatabaseReconcilerOptions {
  /** Lease time-to-live (the heartbeat timeout). Default: 15 s. Renewed every third of it. */
  leaseTtlMs?: number;
}

/** What runs while the agent holds its target's lease. */
interface Serving {
  lease: Lease;
  controllers: Controller[];
  databases: Controller;
  unwatch: () => void;
  timers: NodeJS.Timeout[];
}

/**
 * The agent of one target. It acts only while it holds the target's lease: it takes it (or waits
 * while another agent holds it), renews it every third of its time-to-live, and stops acting the
 * moment it cannot renew in time or finds it taken over — its servers keep running, and whichever
 * agent holds the lease next adopts them. While serving it runs the Database, DatabaseUser and Backup
 * reconcilers, turns the driver's process-exit notices into reconciles, and reports the target
 * (Ready, heartbeat, engines, capabilities, capacity). stop() leaves every managed server running.
 */
export class Agent {
  private readonly reconciler: DatabaseReconciler;
  private readonly backupReconciler: BackupReconciler | undefined;
  private readonly userReconciler: DatabaseUserReconciler;
  /** Takes, verifies and restores backups; undefined without an object store. */
  readonly backups: BackupRunner | undefined;
  private readonly leaseTtlMs: number;
  private serving: Serving | undefined;
  private stopped = false;
  private waitTimer: NodeJS.Timeout | undefined;
  private lastRenewal = 0;
  private waiting = false;
  private prepared = false;
  /** One lease step at a time (take, renew, give up). */
  private step: Promise<void> = Promise.resolve();

  constructor(
    readonly target: string,
    private readonly deps: AgentDeps,
    private readonly options: AgentOptions = {},
  ) {
    this.leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    this.backups = deps.objectStore
      ? new BackupRunner(deps.client, deps.driver, deps.catalog, deps.objectStore, deps.crashPoints)
      : undefined;
    this.reconciler = new DatabaseReconciler(deps.client, deps.driver, deps.catalog, target, this.backups, {
      ...(options.crashLoopRetryMs !== undefined ? { crashLoopRetryMs: options.crashLoopRetryMs } : {}),
      host: deps.holder,
      ...(deps.usage ? { usage: deps.usage } : {}),
    });
    this.backupReconciler = this.backups
      ? new BackupReconciler(deps.client, this.backups, target, deps.usage)
      : undefined;
    this.userReconciler = new DatabaseUserReconciler(deps.client, deps.driver, deps.catalog, target);
  }

  /** Whether this agent holds its target's lease now (and so acts for it). */
  get active(): boolean {
    return this.serving !== undefined;
  }

  /**
   * Takes the lease and starts serving; when another agent holds it, resolves at once and keeps
   * trying in the background until that lease expires.
   */
  async start(): Promise<void> {
    await this.serialized(() => this.tryServe());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.waitTimer);
    await this.serialized(async () => {
      const lease = this.serving?.lease;
      await this.stopServing();
      if (lease) await this.deps.client.releaseLease().catch(() => undefined);
    });
    await this.deps.driver.close();
  }

  private serialized(step: () => Promise<void>): Promise<void> {
    const next = this.step.then(step, step);
    this.step = next.catch(() => undefined);
    return next;
  }

  private async tryServe(): Promise<void> {
    if (this.stopped || this.serving) return;
    let lease: Lease;
    try {
      lease = await this.deps.client.acquireLease(this.deps.holder, this.leaseTtlMs, this.deps.gateway);
    } catch (err) {
      if (err instanceof LeaseHeldError) {
        // Said once per wait: a standby may wait for days.
        if (!this.waiting) this.deps.logger.info({ target: this.target }, err.message);
        this.waiting = true;
      } else
        this.deps.logger.warn(
          { target: this.target, err: String(err) },
          'could not take the lease of the target',
        );
      this.waitTimer = setTimeout(() => void this.serialized(() => this.tryServe()), this.leaseTtlMs / 3);
      this.waitTimer.unref();
      return;
    }
    this.lastRenewal = Date.now();
    this.waiting = false;
    this.deps.logger.info({ target: this.target, fence: lease.fence }, 'serving the target');
    await this.prepare();
    const runtime = (kind: string) => ({
      bus: this.deps.bus,
      metrics: this.deps.metrics,
      logger: this.deps.logger,
      listKeys: () => this.deps.client.listKeys(kind),
      reportTerminalError: (key: ResourceKey, err: TerminalError) =>
        this.deps.client.reportTerminalError(key, err),
    });
    const databases = new Controller(this.reconciler, runtime('Database'), this.options);
    const controllers = [
      databases,
      new Controller(this.userReconciler, runtime('DatabaseUser'), this.options),
    ];
    if (this.backupReconciler)
      controllers.push(new Controller(this.backupReconciler, runtime('Backup'), this.options));
    const unwatch = this.deps.driver.onProcessExit((uid) => {
      const key = this.reconciler.keyOf(uid);
      if (key) databases.enqueue(key);
    });
    for (const controller of controllers) controller.start();
    this.deps.usage?.start();
    const timers = [
      setInterval(() => void this.serialized(() => this.renew()), this.leaseTtlMs / 3),
      setInterval(() => void this.beat(), HEARTBEAT_MS),
    ];
    if (this.deps.objectStore) {
      const store = this.deps.objectStore;
      void this.sweep(store);
      timers.push(setInterval(() => void this.sweep(store), SWEEP_INTERVAL_MS));
    }
    for (const timer of timers) timer.unref();
    this.serving = { lease, controllers, databases, unwatch, timers };
    await this.beat();
  }

  /** Once per process, before the first reconcile: removes what interrupted steps left behind. */
  private async prepare(): Promise<void> {
    if (this.prepared) return;
    this.prepared = true;
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
  }

  /**
   * Renews the lease. Taken over: stop acting at once. Not renewed (the store or the API is away):
   * keep trying while the lease may still run, and stop acting before it can have expired, so two
   * agents never act for one target.
   */
  private async renew(): Promise<void> {
    if (!this.serving) return;
    try {
      this.serving.lease = await this.deps.client.renewLease(this.leaseTtlMs);
      const lapsed = Date.now() - this.lastRenewal > this.leaseTtlMs;
      this.lastRenewal = Date.now();
      // It ran out meanwhile and the control plane may have shown the target lost: say it is back.
      if (lapsed) void this.beat();
    } catch (err) {
      const lost = err instanceof LeaseLostError;
      const runningOut = Date.now() - this.lastRenewal > (this.leaseTtlMs * 2) / 3;
      if (!lost && !runningOut) {
        this.deps.logger.warn(
          { target: this.target, err: String(err) },
          'lease renewal failed; trying again',
        );
        return;
      }
      this.deps.logger.warn(
        { target: this.target, err: String(err) },
        lost
          ? 'the lease of the target was taken over; this agent stops acting for it'
          : 'the lease of the target could not be renewed in time; this agent stops acting for it until it holds it again',
      );
      await this.stopServing();
      if (!this.stopped) {
        this.waitTimer = setTimeout(() => void this.serialized(() => this.tryServe()), this.leaseTtlMs / 3);
        this.waitTimer.unref();
      }
    }
  }

  private async stopServing(): Promise<void> {
    const serving = this.serving;
    if (!serving) return;
    this.serving = undefined;
    for (const timer of serving.timers) clearInterval(timer);
    serving.unwatch();
    await Promise.all(serving.controllers.map((c) => c.stop()));
    // Its last usage, while the lease may still be held (a lost one refuses it: kept for later).
    await this.deps.usage?.stop();
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

  /** Reports the target: Ready, the heartbeat, what it can run and what it has room for. */
  private async beat(): Promise<void> {
    const serving = this.serving;
    if (!serving) return;
    try {
      const engines = this.deps.catalog.list().map((e) => ({ engine: e.engine, versions: e.versions }));
      const capacity = await this.deps.driver.capacity();
      await this.deps.client.updateStatus({ kind: 'Target', project: '', name: this.target }, (current) => ({
        ...current.status,
        phase: 'Ready',
        agent: {
          id: this.deps.holder,
          version: KUMO_VERSION,
          lastHeartbeat: new Date().toISOString(),
          fence: serving.lease.fence,
        },
        engines,
        capabilities: { ...this.deps.driver.capabilities },
        capacity,
        conditions: setCondition(current.status.conditions as Condition[] | undefined, {
          type: 'Ready',
          status: 'True',
          reason: 'AgentConnected',
          message: `agent ${this.deps.holder}; engines: ${engines
            .map((e) => `${e.engine} ${e.versions.join('/')}`)
            .join(', ')}`,
        }),
      }));
    } catch (err) {
      this.deps.logger.warn({ err: String(err) }, 'agent heartbeat failed');
    }
  }
}
