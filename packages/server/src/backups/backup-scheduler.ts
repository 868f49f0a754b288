import { type Resource, backupKind } from '@kumo/api';
import type { StatusWriter } from '../controllers/runtime/status-writer.js';
import { QuotaExceededError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ResourceService } from '../resources/resource-service.js';
import type { ResourceStore } from '../store/resource-store.js';
import { type BackupPolicy, dueSlot } from './schedule.js';

const ACTOR = { actor: 'system:backup-scheduler' };
export const SCHEDULED_LABEL = 'kumo.dev/scheduled';
export const DATABASE_LABEL = 'kumo.dev/database';

export interface BackupSchedulerOptions {
  intervalMs: number;
  /** Backups of a deleted database are removed this many days after they were taken. */
  orphanRetentionDays: number;
}

/**
 * The control plane's backup clock. Each tick, for every database with a backup policy: creates
 * one Backup for the latest due slot (never a burst of missed ones after downtime; the agent runs
 * one backup per database at a time; with `verify`, the Backup asks for its verification too), and
 * removes scheduled backups past the policy's retention. It also removes backups of deleted
 * databases once they are older than the orphan retention.
 */
export class BackupScheduler {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;

  constructor(
    private readonly store: ResourceStore,
    private readonly service: ResourceService,
    private readonly status: StatusWriter,
    private readonly logger: Logger,
    private readonly options: BackupSchedulerOptions,
  ) {}

  start(): void {
    this.timer = setInterval(
      () =>
        void this.tick().catch((err) =>
          this.logger.warn({ err: String(err) }, 'backup schedule tick failed'),
        ),
      this.options.intervalMs,
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
  }

  /** One pass over every database and backup, as of `now`. */
  async tick(now = new Date()): Promise<void> {
    const pass = this.pass(now);
    this.ticking = pass.catch(() => undefined);
    await pass;
  }

  private async pass(now: Date): Promise<void> {
    const backups = await this.all('Backup');
    const databases = new Map<string, Resource>();
    for (const db of await this.all('Database'))
      databases.set(`${db.metadata.project}/${db.metadata.name}`, db);
    for (const db of databases.values()) {
      const policy = (db.spec as { backupPolicy?: BackupPolicy }).backupPolicy;
      if (!policy || db.metadata.deletionTimestamp) continue;
      try {
        await this.schedule(db, policy, now);
        await this.retain(db, policy, backups, now);
      } catch (err) {
        // One database's trouble does not stop the others; it is told on that database.
        await this.status
          .event(
            db,
            'Warning',
            'BackupScheduleFailed',
            `the backup schedule could not run: ${(err as Error).message}`,
          )
          .catch(() => undefined);
      }
    }
    const cutoff = now.getTime() - this.options.orphanRetentionDays * 86_400_000;
    for (const backup of backups) {
      const db = databases.get(
        `${backup.metadata.project}/${(backup.spec as { database: string }).database}`,
      );
      const uid = (backup.status as { databaseUid?: string }).databaseUid;
      const orphaned = !db || (uid !== undefined && db.metadata.uid !== uid);
      if (orphaned && Date.parse(backup.metadata.createdAt) < cutoff && !backup.metadata.deletionTimestamp) {
        await this.remove(
          backup,
          `its database is gone and it is older than ${this.options.orphanRetentionDays} days`,
        );
      }
    }
  }

  private async schedule(db: Resource, policy: BackupPolicy, now: Date): Promise<void> {
    const state = (db.status as { backups?: { lastScheduledAt?: string } }).backups;
    const since = new Date(state?.lastScheduledAt ?? db.metadata.createdAt);
    const slot = dueSlot(policy, since, now);
    if (!slot) return;
    const name = `${db.metadata.name.slice(0, 45)}-${slot.toISOString().slice(0, 16).replace(/[-:T]/g, '')}`;
    const project = db.metadata.project ?? '';
    try {
      await this.service.create(
        backupKind,
        project,
        {
          metadata: { name, labels: { [SCHEDULED_LABEL]: 'true', [DATABASE_LABEL]: db.metadata.name } },
          spec: {
            database: db.metadata.name,
            ...(policy.verify ? { verifyRequestedAt: slot.toISOString() } : {}),
          },
        },
        ACTOR,
      );
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (err instanceof QuotaExceededError) {
        await this.status.event(
          db,
          'Warning',
          'BackupSkipped',
          `scheduled backup ${name} skipped: ${err.message}`,
        );
      } else if (code !== 'already-exists') {
        throw err;
      }
    }
    await this.status.update({ kind: 'Database', project, name: db.metadata.name }, (current) => ({
      ...current.status,
      backups: { lastScheduledAt: slot.toISOString(), lastScheduledBackup: name },
    }));
  }

  /**
   * Keeps the newest keepLast scheduled backups of a database and removes the rest, and any older
   * than keepDays; the newest Succeeded one is always kept, so a database never loses its last good backup.
   */
  private async retain(db: Resource, policy: BackupPolicy, backups: Resource[], now: Date): Promise<void> {
    const mine = backups
      .filter(
        (b) =>
          b.metadata.project === db.metadata.project &&
          b.metadata.labels[SCHEDULED_LABEL] === 'true' &&
          b.metadata.labels[DATABASE_LABEL] === db.metadata.name &&
          (b.status as { databaseUid?: string }).databaseUid === db.metadata.uid &&
          !b.metadata.deletionTimestamp &&
          (b.status.phase === 'Succeeded' || b.status.phase === 'Failed'),
      )
      .sort((a, b) => b.metadata.createdAt.localeCompare(a.metadata.createdAt));
    const newestGood = mine.find((b) => b.status.phase === 'Succeeded');
    for (const [i, backup] of mine.entries()) {
      if (backup === newestGood) continue;
      const ageDays = (now.getTime() - Date.parse(backup.metadata.createdAt)) / 86_400_000;
      if (i >= policy.keepLast) await this.remove(backup, `beyond the newest ${policy.keepLast} (keepLast)`);
      else if (policy.keepDays !== undefined && ageDays > policy.keepDays) {
        await this.remove(backup, `older than ${policy.keepDays} days (keepDays)`);
      }
    }
  }

  private async remove(backup: Resource, why: string): Promise<void> {
    this.logger.info(
      { backup: `${backup.metadata.project}/${backup.metadata.name}`, why },
      'removing backup by retention',
    );
    await this.store
      .delete({ kind: 'Backup', project: backup.metadata.project ?? '', name: backup.metadata.name }, ACTOR)
      .catch((err: { code?: string }) => {
        if (err.code !== 'not-found') throw err;
      });
  }

  /** Every resource of a kind, in one read. */
  private async all(kind: string): Promise<Resource[]> {
    return (await this.store.list(kind, { limit: 1_000_000 })).items;
  }
}
