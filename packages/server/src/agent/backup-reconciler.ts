import type { Resource } from '@kumo/api';
import type { z } from 'zod';
import type { backupKind } from '@kumo/api';
import type { ReconcileResult, Reconciler } from '../controllers/runtime/reconciler.js';
import type { ResourceKey } from '../store/resource-rows.js';
import type { AgentClient } from './agent-client.js';
import { BackupError } from './backup-error.js';
import type { BackupRunner } from './backup-runner.js';
import { backupRates } from '../metering/backup-usage.js';
import type { UsageReporter } from '../metering/usage-reporter.js';

export const BACKUP_FINALIZER = 'kumo.dev/backup-object';

type BackupStatus = z.infer<typeof backupKind.status>;
type BackupSpec = z.infer<typeof backupKind.spec>;

/** How long a backup waits for its database to become Ready before it fails. */
const READY_WAIT_MS = 10 * 60_000;
/** A backup that crashes of Kumo interrupted is taken again until it has started this often. */
const MAX_ATTEMPTS = 3;

/**
 * The agent's reconciler for Backups of its target's databases: takes each backup once, one per
 * database at a time; fails the ones it cannot take (and those a restart interrupted) loudly;
 * verifies on request; removes the stored object when the Backup is deleted. A stored backup's
 * bytes are metered until then (docs/billing.md).
 */
export class BackupReconciler implements Reconciler {
  readonly name = 'backup-agent';
  readonly kind = 'Backup';
  /** Backups (by uid) found interrupted, and when: until they are taken again. */
  private readonly interrupted = new Map<string, number>();

  constructor(
    private readonly client: AgentClient,
    private readonly runner: BackupRunner,
    private readonly target: string,
    /** The agent's meter; without: nothing is metered. */
    private readonly usage?: UsageReporter,
  ) {}

  async reconcile(key: ResourceKey): Promise<ReconcileResult | void> {
    const backup = await this.client.get(key);
    if (!backup) return;
    const spec = backup.spec as BackupSpec;
    const status = backup.status as BackupStatus;
    const db = await this.client.get({ kind: 'Database', project: key.project, name: spec.database });
    const sameDb = db && (!status.databaseUid || db.metadata.uid === status.databaseUid) ? db : undefined;
    const owner = status.target ?? (sameDb?.spec as { target?: string } | undefined)?.target;
    if (owner !== undefined && owner !== this.target) return;

    if (backup.metadata.deletionTimestamp) {
      if (!backup.metadata.finalizers.includes(BACKUP_FINALIZER)) return;
      try {
        await this.runner.deleteObjects(backup);
        // Deleted while Running: what a try a crash interrupted may have stored is removed too.
        if (!status.object) await this.runner.discardInterrupted(backup);
      } catch (err) {
        // Kept (and retried) until its object is gone: say why it is still here.
        await this.client.event(backup, 'Warning', 'ObjectDeleteFailed', (err as Error).message);
        throw err;
      }
      // Its bytes were held up to this second, and that is reported while the resource is still there.
      this.usage?.recorder.ended(backup.metadata.uid, Math.floor(Date.now() / 1000));
      await this.usage?.flush();
      await this.client.removeFinalizer(key, BACKUP_FINALIZER);
      return;
    }

    switch (status.phase) {
      case undefined:
      case 'Pending':
        return this.take(backup, sameDb);
      case 'Running': {
        if (this.runner.isTaking(backup.metadata.uid)) return;
        // Another backup of its database runs here: take this one up again after it.
        if (status.databaseUid && this.runner.isBusy(status.databaseUid)) return { requeueAfterMs: 1000 };
        // Running here, but not in this process: Kumo stopped or crashed while it ran. What that
        // try stored is discarded (once) and it is taken again, a few times at most; its database
        // gets the usual wait to be Ready from when the interruption was found.
        const attempts = status.attempts ?? 1;
        let found = this.interrupted.get(backup.metadata.uid);
        if (found === undefined) {
          found = Date.now();
          this.interrupted.set(backup.metadata.uid, found);
          await this.runner.discardInterrupted(backup);
          if (sameDb && attempts < MAX_ATTEMPTS)
            await this.client.event(
              backup,
              'Warning',
              'Interrupted',
              `Kumo stopped while this backup ran (attempt ${attempts} of ${MAX_ATTEMPTS}); taking it again`,
            );
        }
        if (sameDb && attempts < MAX_ATTEMPTS) {
          const result = await this.take(backup, sameDb, found);
          if (!result?.requeueAfterMs) this.interrupted.delete(backup.metadata.uid);
          return result;
        }
        this.interrupted.delete(backup.metadata.uid);
        await this.runner.fail(
          backup,
          sameDb,
          new BackupError(
            'Interrupted',
            `Kumo stopped while this backup ran, ${attempts} time(s); it is incomplete. Take a new one.`,
          ),
        );
        return;
      }
      case 'Succeeded':
        this.meter(backup, status);
        // A new request, or one a stop interrupted (Running, but not running here).
        if (
          spec.verifyRequestedAt &&
          (spec.verifyRequestedAt !== status.verification?.requestedAt ||
            (status.verification.state === 'Running' && !this.runner.isVerifying(backup.metadata.uid)))
        ) {
          await this.runner.verify(backup);
        }
        return;
      default:
        return;
    }
  }

  /** Counts a stored backup's bytes from now on (it is observed again at every change and restart). */
  private meter(backup: Resource, status: BackupStatus): void {
    if (!status.object) return;
    this.usage?.recorder.observe(
      {
        uid: backup.metadata.uid,
        kind: backup.kind,
        project: backup.metadata.project ?? '',
        name: backup.metadata.name,
      },
      backupRates({ engine: status.engine ?? '', bytes: status.object.size }),
      Math.floor(Date.now() / 1000),
    );
  }

  /**
   * Takes the backup once its database is Ready, waiting up to READY_WAIT_MS from `since` (its
   * creation, or when its interruption was found).
   */
  private async take(
    backup: Resource,
    db: Resource | undefined,
    since = Date.parse(backup.metadata.createdAt),
  ): Promise<ReconcileResult | void> {
    const name = (backup.spec as BackupSpec).database;
    if (!db) {
      return this.runner.fail(
        backup,
        undefined,
        new BackupError('DatabaseNotFound', `Database "${name}" does not exist.`),
      );
    }
    if (db.metadata.deletionTimestamp) {
      return this.runner.fail(
        backup,
        db,
        new BackupError('DatabaseDeleting', `Database "${name}" is being deleted.`),
      );
    }
    if ((db.spec as { stopped?: boolean }).stopped) {
      return this.runner.fail(
        backup,
        db,
        new BackupError('DatabaseStopped', `Database "${name}" is stopped; start it to back it up.`),
      );
    }
    if (db.status.phase !== 'Ready') {
      if (Date.now() - since > READY_WAIT_MS) {
        return this.runner.fail(
          backup,
          db,
          new BackupError('DatabaseNotReady', `Database "${name}" did not become Ready within 10 minutes.`),
        );
      }
      return { requeueAfterMs: 2000 };
    }
    const outcome = await this.runner.run(backup, db);
    if (outcome === 'Busy') return { requeueAfterMs: 1000 };
    // Stored: the next pass meters it (writing its status is no reason for one), and verifies it
    // if that was asked for with the backup (a policy with verify, or a POST that sets it).
    if (outcome === 'Succeeded') return { requeueAfterMs: 1 };
  }
}
