import { type Condition, type Resource, findCondition, setCondition } from '@kumo/api';
import type { z } from 'zod';
import type { databaseKind } from '@kumo/api';
import { TerminalError, type ReconcileResult, type Reconciler } from '../controllers/runtime/reconciler.js';
import {
  DriverError,
  type InstanceSpec,
  type Observation,
  type RuntimeDriver,
  nothingObserved,
} from '../drivers/driver.js';
import type { EngineCatalog } from '../engines/engine-catalog.js';
import type { ResourceKey } from '../store/resource-rows.js';
import type { AgentClient } from './agent-client.js';
import { instanceSpecOf } from './instance-spec.js';
import { BACKUP_FINALIZER } from './backup-reconciler.js';
import { databaseRates } from '../metering/database-usage.js';
import type { UsageReporter } from '../metering/usage-reporter.js';
import type { BackupRunner } from './backup-runner.js';

export const RUNTIME_FINALIZER = 'kumo.dev/runtime';

type DatabaseSpec = z.infer<typeof databaseKind.spec>;
type DatabaseStatus = z.infer<typeof databaseKind.status>;
type RestoreStatus = NonNullable<DatabaseStatus['restore']>;

const CRASH_WINDOW_MS = 10 * 60_000;
const CRASH_LIMIT = 5;
/** A crash loop is tried again after this long at first, doubling up to CRASH_LOOP_MAX_RETRY_MS. */
const CRASH_LOOP_RETRY_MS = 5 * 60_000;
const CRASH_LOOP_MAX_RETRY_MS = 60 * 60_000;

interface CrashLoop {
  generation: number;
  retryAt: number;
  backoffMs: number;
  message: string;
  /** Set once its wait is over and the server was started again: the next crash counts anew. */
  retried?: boolean;
}

export interface DatabaseReconcilerOptions {
  /** The first wait before a crash loop is tried again (doubling each time). Default: 5 minutes. */
  crashLoopRetryMs?: number;
  /** This agent installation (its lease holder): recorded as status.host of the servers it runs. */
  host?: string;
  /** The agent's meter: every observation is counted there (docs/billing.md). */
  usage?: UsageReporter;
}
/** How soon a database whose server is on another agent's host is looked at again. */
const ELSEWHERE_RETRY_MS = 60_000;
/** How soon a database whose instance is busy (a dump) is reconciled again. */
const BUSY_RETRY_MS = 2000;
/** How often a database being deleted looks again whether its users are gone. */
const USERS_WAIT_MS = 1000;
/** Storage usage and readiness are re-observed at least this often. */
const OBSERVE_INTERVAL_MS = 30_000;

/**
 * The agent's reconciler for Databases of its target: provisions, converges and deletes through
 * the runtime driver, and reports what it observes (never what it intended) in status.
 * A start that fails is retried with the runtime's backoff (StartFailed). A server that keeps
 * crashing ends in Error (CrashLoop) and is tried again after a long, growing wait, or at once
 * when its spec changes.
 */
export class DatabaseReconciler implements Reconciler {
  readonly name = 'database-agent';
  readonly kind = 'Database';
  private readonly crashes = new Map<string, number[]>();
  private readonly crashLoops = new Map<string, CrashLoop>();
  private readonly keysByUid = new Map<string, ResourceKey>();
  private readonly crashLoopRetryMs: number;
  private readonly host: string | undefined;
  private readonly usage: UsageReporter | undefined;

  constructor(
    private readonly client: AgentClient,
    private readonly driver: RuntimeDriver,
    private readonly catalog: EngineCatalog,
    private readonly target: string,
    private readonly backups?: BackupRunner,
    options: DatabaseReconcilerOptions = {},
  ) {
    this.crashLoopRetryMs = options.crashLoopRetryMs ?? CRASH_LOOP_RETRY_MS;
    this.host = options.host;
    this.usage = options.usage;
  }

  /** The key of a database this reconciler has seen, by uid (for process-exit nudges). */
  keyOf(uid: string): ResourceKey | undefined {
    return this.keysByUid.get(uid);
  }

  async reconcile(key: ResourceKey): Promise<ReconcileResult | void> {
    const db = await this.client.get(key);
    if (!db) return;
    const spec = db.spec as DatabaseSpec;
    if (spec.target !== this.target) return;
    const uid = db.metadata.uid;
    this.keysByUid.set(uid, key);

    // A dump of it runs (a backup): its changes wait for it without holding a worker.
    if (this.driver.busy(uid)) return { requeueAfterMs: BUSY_RETRY_MS };
    if (db.metadata.deletionTimestamp) {
      if (!db.metadata.finalizers.includes(RUNTIME_FINALIZER)) return;
      // Its users are deleted with it, and this agent sees a user only while its database is
      // there: the database waits until they are gone.
      const users = await this.usersOf(db);
      if (users > 0) return { requeueAfterMs: USERS_WAIT_MS };
      await this.driver.delete(uid);
      // It accrues up to this second, and that is reported while the resource is still there.
      this.usage?.recorder.ended(uid, Math.floor(Date.now() / 1000));
      await this.usage?.flush();
      await this.client.event(db, 'Normal', 'Deleted', 'server stopped and its data removed');
      await this.client.removeFinalizer(key, RUNTIME_FINALIZER);
      this.forget(uid);
      return;
    }

    const problems = this.catalog.validate(spec);
    if (problems.length > 0) {
      throw new TerminalError('InvalidSpec', problems.map((p) => `${p.field} ${p.message}`).join('; '));
    }
    const now = Date.now();
    const loop = this.crashLoops.get(uid);
    if (loop && loop.generation !== db.metadata.generation)
      this.forget(uid); // a new spec: try at once
    else if (loop && now < loop.retryAt) return { requeueAfterMs: loop.retryAt - now }; // stays in Error
    // Its wait is over: the crash that ended the loop was counted; this start is the next try.
    const retrying = loop !== undefined && this.crashLoops.has(uid) && !loop.retried;
    if (retrying) loop.retried = true;

    const nextExpiry = Math.min(
      ...spec.acl.map((e) => (e.expiresAt ? Date.parse(e.expiresAt) : Infinity)).filter((t) => t > now),
    );
    const instance = instanceSpecOf(db, this.catalog, await this.client.credentials(db), now);

    let before: Observation | undefined;
    try {
      before = await this.driver.observe(instance);
      if (before.crashed && !retrying && (await this.crashed(db, 'the server process exited unexpectedly'))) {
        const looping = this.crashLoops.get(uid)!;
        await this.setStatus(db, before, { phase: 'Error', reason: 'CrashLoop', message: looping.message });
        return { requeueAfterMs: looping.retryAt - Date.now() };
      }
      const host = (db.status as { host?: string }).host;
      if (!before.exists && host !== undefined && this.host !== undefined && host !== this.host) {
        // Its server and data are on the host of the agent that made it: starting an empty one
        // here would run it twice and lose its data. Say so, and wait for that agent.
        await this.setStatus(db, before, {
          phase: 'Error',
          reason: 'InstanceElsewhere',
          message: `The server of this database runs on the host of agent ${host}; this agent (${this.host}) serves the target now and has no copy of its data. Stop this agent, then start ${host} again: it takes the target back and adopts the running server.`,
        });
        return { requeueAfterMs: ELSEWHERE_RETRY_MS };
      }
      if (!before.exists) {
        await this.setStatus(db, before, {
          phase: 'Provisioning',
          reason: 'Provisioning',
          message: 'creating the server',
        });
      }
      const outcome = await this.driver.apply(instance);
      for (const action of outcome.actions)
        await this.client.event(db, 'Normal', action.reason, action.message);
      const waiting = await this.restoreIfAsked(db, instance);
      await this.setStatus(db, await this.driver.observe(instance));
      if (waiting) return { requeueAfterMs: waiting };
    } catch (caught) {
      await this.reportFailure(db, instance, caught);
    }
    const untilExpiry = Number.isFinite(nextExpiry) ? Math.max(50, nextExpiry - now) : OBSERVE_INTERVAL_MS;
    return { requeueAfterMs: Math.min(untilExpiry, OBSERVE_INTERVAL_MS) };
  }

  /**
   * Restores a backup when the spec asks: once, into a new database (restoreFrom, before it is
   * reported Ready), or in place (restoreInPlace, after a safety backup). Returns a delay when it
   * waits for the safety backup. Throws DriverError when a fork's restore fails.
   */
  private async restoreIfAsked(db: Resource, instance: InstanceSpec): Promise<number | undefined> {
    const spec = db.spec as DatabaseSpec;
    if (!this.backups || spec.stopped) return undefined;
    const done = (db.status as DatabaseStatus).restore;
    // A fork restores once; after that, in-place restores of it work like any other database's.
    if (spec.restoreFrom && (!done || (done.mode === 'fork' && done.state !== 'Succeeded'))) {
      await this.restoreFork(db, instance, spec.restoreFrom.backup, done, this.backups);
      return undefined;
    }
    const wanted = spec.restoreInPlace;
    if (!wanted || (done?.requestedAt === wanted.requestedAt && done.state !== 'Running')) return undefined;
    return this.restoreInPlace(db, instance, wanted, done, this.backups);
  }

  private async restoreFork(
    db: Resource,
    instance: InstanceSpec,
    backup: string,
    done: RestoreStatus | undefined,
    backups: BackupRunner,
  ): Promise<void> {
    if (done?.state === 'Failed') {
      // Never Ready with half the data: it stays in Error; delete it and fork again.
      const message = `Restoring backup ${backup} failed: ${done.message ?? ''}`;
      throw new DriverError(done.reason ?? 'RestoreFailed', message, true);
    }
    const base = { backup, mode: 'fork' } as const;
    await this.recordRestore(db, { ...base, state: 'Running' });
    try {
      // Replacing: the fork holds nothing else, and a restore that a crash interrupted after it
      // loaded everything (but before Succeeded was recorded) must be able to load it again.
      const durationMs = await backups.restoreInto(db, instance, backup, true);
      const completedAt = new Date().toISOString();
      await this.recordRestore(db, { ...base, state: 'Succeeded', completedAt, durationMs });
      await this.client.event(db, 'Normal', 'Restored', `backup ${backup} restored in ${durationMs} ms`);
    } catch (err) {
      // Retried unless retrying cannot help (a missing or corrupted backup); until then not Ready.
      const terminal = err instanceof DriverError && err.terminal;
      await this.recordRestore(db, {
        ...base,
        state: terminal ? 'Failed' : 'Running',
        ...(err instanceof DriverError ? { reason: err.reason } : {}),
        message: (err as Error).message,
      });
      throw err;
    }
  }

  /** Step by step, one step per reconcile: take the safety backup, wait for it, restore. */
  private async restoreInPlace(
    db: Resource,
    instance: InstanceSpec,
    wanted: { backup: string; requestedAt: string },
    done: RestoreStatus | undefined,
    backups: BackupRunner,
  ): Promise<number | undefined> {
    const project = db.metadata.project ?? '';
    const base = { backup: wanted.backup, mode: 'in-place', requestedAt: wanted.requestedAt } as const;
    if (done?.requestedAt !== wanted.requestedAt) {
      const safety = `${db.metadata.name.slice(0, 40)}-safety-${Math.floor(Date.parse(wanted.requestedAt) / 1000)}`;
      await this.client
        .create('Backup', project, {
          name: safety,
          labels: { 'kumo.dev/safety-backup': 'true' },
          finalizers: [BACKUP_FINALIZER],
          spec: { database: db.metadata.name },
        })
        .catch((err: { code?: string }) => {
          if (err.code !== 'already-exists') throw err;
        });
      await this.recordRestore(db, { ...base, state: 'Running', safetyBackup: safety });
      await this.client.event(
        db,
        'Normal',
        'SafetyBackup',
        `taking safety backup ${safety} before restoring ${wanted.backup}`,
      );
      return 1000;
    }
    const safetyBackup = done.safetyBackup!;
    const safety = await this.client.get({ kind: 'Backup', project, name: safetyBackup });
    const phase = safety?.status.phase;
    if (phase === 'Pending' || phase === 'Running') return 1000;
    if (phase !== 'Succeeded') {
      const message = `the safety backup ${safetyBackup} ${safety ? 'failed' : 'is gone'}; nothing was restored`;
      await this.recordRestore(db, { ...base, safetyBackup, state: 'Failed', message });
      await this.client.event(db, 'Warning', 'RestoreFailed', message);
      return undefined;
    }
    try {
      const durationMs = await backups.restoreInto(db, instance, wanted.backup, true);
      const completedAt = new Date().toISOString();
      await this.recordRestore(db, { ...base, safetyBackup, state: 'Succeeded', completedAt, durationMs });
      await this.client.event(
        db,
        'Normal',
        'Restored',
        `backup ${wanted.backup} restored in place in ${durationMs} ms (safety backup ${safetyBackup})`,
      );
    } catch (err) {
      const message = `${(err as Error).message}; the data before it is in safety backup ${safetyBackup}`;
      await this.recordRestore(db, { ...base, safetyBackup, state: 'Failed', message });
      await this.client.event(db, 'Warning', 'RestoreFailed', message);
    }
    return undefined;
  }

  private async recordRestore(db: Resource, restore: RestoreStatus): Promise<void> {
    await this.client.updateStatus(keyOfResource(db), (current) => ({ ...current.status, restore }));
  }

  /**
   * Every failure reaches status (Ready=False with the reason) and an event; an unexpected one as
   * InternalError with its message. Then rethrows: terminal ones as TerminalError, others for a
   * retry with backoff (a start that failed, StartFailed, is one of those: not a crash).
   */
  private async reportFailure(db: Resource, instance: InstanceSpec, caught: unknown): Promise<never> {
    const err =
      caught instanceof DriverError
        ? caught
        : new DriverError(
            'InternalError',
            `reconciling failed: ${String((caught as Error)?.message ?? caught)}`,
          );
    const seen = await this.driver.observe(instance).catch(() => undefined);
    await this.setStatus(db, seen ?? nothingObserved('the target could not be observed'), {
      phase: err.terminal ? 'Error' : 'Degraded',
      reason: err.reason,
      message: err.message,
    });
    await this.client.event(db, 'Warning', err.reason, err.message);
    if (err.terminal) throw new TerminalError(err.reason, err.message);
    throw err;
  }

  /**
   * Counts a crash, with an event and Degraded status. Past the limit it records a crash loop
   * (tried again after a wait that doubles each time) and returns true.
   */
  private async crashed(db: Resource, message: string): Promise<boolean> {
    const uid = db.metadata.uid;
    const now = Date.now();
    const recent = [...(this.crashes.get(uid) ?? []).filter((t) => now - t < CRASH_WINDOW_MS), now];
    this.crashes.set(uid, recent);
    const tail = (await this.driver.logs(uid, 8).catch(() => [])).join('\n');
    await this.client.event(db, 'Warning', 'Crashed', `${message} (${recent.length} in 10 minutes)`);
    await this.client.updateStatus(
      keyOfResource(db),
      (current) => ({
        ...current.status,
        phase: 'Degraded',
        conditions: setCondition(current.status.conditions as Condition[] | undefined, {
          type: 'Ready',
          status: 'False',
          reason: 'ProcessExited',
          message: `${message}; restarting. Last log lines:\n${tail}`,
          observedGeneration: db.metadata.generation,
        }),
      }),
      db.metadata.generation,
    );
    if (recent.length < CRASH_LIMIT) return false;
    const previous = this.crashLoops.get(uid);
    const backoffMs = previous
      ? Math.min(previous.backoffMs * 2, CRASH_LOOP_MAX_RETRY_MS)
      : this.crashLoopRetryMs;
    const loop: CrashLoop = {
      generation: db.metadata.generation,
      retryAt: now + backoffMs,
      backoffMs,
      message: `The server crashed ${recent.length} times in 10 minutes; Kumo tries again at ${new Date(now + backoffMs).toISOString()} (or at once when the spec changes). Last log lines:\n${tail}`,
    };
    this.crashLoops.set(uid, loop);
    await this.client.event(db, 'Warning', 'CrashLoop', loop.message);
    return true;
  }

  /** Writes what was seen for `db` as read at the start of this reconcile (its generation, not a newer one). */
  private async setStatus(
    db: Resource,
    seen: Observation,
    override?: { phase: string; reason: string; message: string },
  ): Promise<void> {
    const spec = db.spec as DatabaseSpec;
    this.meter(db, seen);
    const g = db.metadata.generation;
    const quotaBytes = spec.storageGB * 1024 ** 3;
    const overQuota = (seen.usage?.storageBytes ?? 0) > quotaBytes;
    let wasOver = false;
    const updated = await this.client.updateStatus(
      keyOfResource(db),
      (current) => {
        wasOver =
          findCondition(current.status.conditions as Condition[] | undefined, 'StorageWithinQuota')
            ?.status === 'False';
        let conditions = current.status.conditions as Condition[] | undefined;
        /** ok undefined: not known (status Unknown). */
        const set = (type: string, ok: boolean | undefined, reason: string, message = '') =>
          (conditions = setCondition(conditions, {
            type,
            status: ok === undefined ? 'Unknown' : ok ? 'True' : 'False',
            reason,
            message,
            observedGeneration: g,
          }));
        const healthy = seen.ready && seen.configApplied && seen.aclApplied && seen.credentialsApplied;
        set('Provisioned', seen.exists, seen.exists ? 'Provisioned' : 'Provisioning');
        // A stopped server has nothing to apply: it starts with the spec's configuration.
        const configApplied = seen.configApplied || (spec.stopped && seen.exists);
        const aclApplied = seen.aclApplied || (spec.stopped && seen.exists);
        set('ConfigApplied', configApplied, configApplied ? 'Applied' : 'Pending');
        set('AclApplied', aclApplied, aclApplied ? 'Applied' : 'Pending', enforcedAcl(spec.acl, Date.now()));
        if (seen.exists && !seen.usage)
          set(
            'StorageWithinQuota',
            undefined,
            'NotMeasured',
            'the storage in use could not be measured; the next check tries again',
          );
        else
          set(
            'StorageWithinQuota',
            !overQuota,
            overQuota ? 'QuotaExceeded' : 'WithinQuota',
            overQuota
              ? `using ${seen.usage!.storageBytes} bytes of ${quotaBytes} (storageGB ${spec.storageGB}); the database keeps running`
              : '',
          );
        let phase: string;
        if (override) {
          phase = override.phase;
          set('Ready', false, override.reason, override.message);
        } else if (spec.stopped) {
          phase = seen.running ? 'Updating' : 'Stopped';
          set('Ready', false, 'Stopped', 'stopped on request (spec.stopped)');
        } else if (healthy) {
          phase = 'Ready';
          set('Ready', true, 'Running', '');
        } else {
          phase = seen.exists ? (seen.running ? 'Updating' : 'Degraded') : 'Provisioning';
          set('Ready', false, seen.running ? 'NotReady' : 'NotRunning', seen.message);
        }
        return {
          ...current.status,
          phase,
          conditions,
          ...(seen.exists && this.host !== undefined ? { host: this.host } : {}),
          ...(seen.endpoint ? { endpoint: seen.endpoint } : {}),
          ...(seen.credentialsVersion !== undefined ? { credentialsVersion: seen.credentialsVersion } : {}),
          ...(seen.usage ? { usage: seen.usage } : {}),
        };
      },
      g,
    );
    if (updated && overQuota && !wasOver) {
      const condition = findCondition(updated.status.conditions as Condition[], 'StorageWithinQuota');
      await this.client.event(
        updated,
        'Warning',
        'QuotaExceeded',
        condition?.message ?? 'storage quota exceeded',
      );
    }
  }

  /** Counts what was seen: running or not, with the plan in effect (the spec's once applied). */
  private meter(db: Resource, seen: Observation): void {
    const recorder = this.usage?.recorder;
    if (!recorder) return;
    const spec = db.spec as DatabaseSpec;
    const uid = db.metadata.uid;
    const now = Math.floor(Date.now() / 1000);
    if (!seen.exists) return recorder.absent(uid, now);
    recorder.observe(
      { uid, kind: db.kind, project: db.metadata.project ?? '', name: db.metadata.name },
      databaseRates({
        running: seen.running,
        engine: spec.engine,
        plan:
          seen.configApplied || !seen.running ? spec.plan : (recorder.dimensionOf(uid, 'plan') ?? spec.plan),
        storageGB: spec.storageGB,
        ...(seen.usage ? { usedBytes: seen.usage.storageBytes } : {}),
      }),
      now,
    );
  }

  /** How many DatabaseUsers of db there still are. */
  private async usersOf(db: Resource): Promise<number> {
    const project = db.metadata.project ?? '';
    const keys = (await this.client.listKeys('DatabaseUser')).filter((k) => k.project === project);
    const users = await Promise.all(keys.map((k) => this.client.get(k)));
    return users.filter((u) => (u?.spec as { database?: string } | undefined)?.database === db.metadata.name)
      .length;
  }

  private forget(uid: string): void {
    this.crashes.delete(uid);
    this.crashLoops.delete(uid);
  }
}

/** What AclApplied says is enforced: the active entries (expired ones no longer let anyone in). */
function enforcedAcl(acl: DatabaseSpec['acl'], now: number): string {
  const active = acl.filter((e) => !e.expiresAt || Date.parse(e.expiresAt) > now).length;
  const entries = `${active} ACL entr${active === 1 ? 'y' : 'ies'} enforced`;
  return acl.length > active ? `${entries} (${acl.length - active} expired)` : entries;
}

function keyOfResource(r: Resource): ResourceKey {
  return { kind: r.kind, project: r.metadata.project ?? '', name: r.metadata.name };
}
