import { createHash } from 'node:crypto';
import { type Condition, type Resource, setCondition } from '@kumo/api';
import type { z } from 'zod';
import type { backupKind } from '@kumo/api';
import type { ObjectInfo, ObjectStore, StoredObject } from '../backups/object-store.js';
import { DriverError, type DataFacts, type InstanceSpec, type RuntimeDriver } from '../drivers/driver.js';
import type { EngineCatalog } from '../engines/engine-catalog.js';
import { type CrashPoints, NO_CRASH_POINTS } from '../faults/crash-points.js';
import type { ResourceKey } from '../store/resource-rows.js';
import type { AgentClient } from './agent-client.js';
import { BackupError, asBackupError } from './backup-error.js';
import { requireEngine } from '../engines/registry.js';
import { compareFacts } from './compare-facts.js';
import { instanceSpecOf } from './instance-spec.js';
import { SCRATCH_PREFIX, scratchSpec } from './scratch-instance.js';

type BackupStatus = z.infer<typeof backupKind.status>;

/**
 * Takes, checks, verifies and restores backups for one agent's databases. A backup is Succeeded
 * only after the store's own size and tag for the object match what was sent; every failure is a
 * Failed backup, a Warning event and BackupHealthy=False on the database. One backup per database
 * runs at a time.
 */
export class BackupRunner {
  /** Databases (by uid) with a backup being taken, one at a time each. */
  private readonly busy = new Set<string>();
  /** The backups (by uid) being taken. */
  private readonly taking = new Set<string>();
  private readonly verifying = new Set<string>();

  constructor(
    private readonly client: AgentClient,
    private readonly driver: RuntimeDriver,
    private readonly catalog: EngineCatalog,
    private readonly store: ObjectStore,
    private readonly crash: CrashPoints = NO_CRASH_POINTS,
  ) {}

  /** Whether this agent is verifying this backup (by uid) now. */
  isVerifying(backupUid: string): boolean {
    return this.verifying.has(backupUid);
  }

  /** Whether a backup of this database is being taken by this agent now. */
  isBusy(databaseUid: string): boolean {
    return this.busy.has(databaseUid);
  }

  /** Whether this backup (by uid) is being taken by this agent now. */
  isTaking(backupUid: string): boolean {
    return this.taking.has(backupUid);
  }

  /** Takes the backup. Resolves with the final status; never throws for a failed backup. */
  async run(backup: Resource, db: Resource): Promise<'Succeeded' | 'Failed' | 'Busy'> {
    const dbUid = db.metadata.uid;
    if (this.busy.has(dbUid)) return 'Busy';
    this.busy.add(dbUid);
    this.taking.add(backup.metadata.uid);
    const key = objectKey(backup, {
      name: db.metadata.name,
      uid: dbUid,
      engine: (db.spec as { engine: string }).engine,
    });
    const startedAt = new Date().toISOString();
    const spec = db.spec as { engine: string; version: string; target: string; plan: string };
    // Running is written while the dump starts, not before it: the write's wait is not added to
    // every backup. It is awaited before anything later is written, so the phases stay in order.
    const running = this.setBackup(backup, (s) => ({
      ...s,
      phase: 'Running',
      databaseUid: dbUid,
      target: spec.target,
      engine: spec.engine,
      version: spec.version,
      plan: spec.plan,
      startedAt,
      attempts: ((s.attempts as number | undefined) ?? 0) + 1,
      conditions: setCondition(s.conditions as Condition[] | undefined, {
        type: 'Succeeded',
        status: 'Unknown',
        reason: 'Running',
        message: `dumping ${spec.engine} ${spec.version} into ${this.store.description}`,
      }),
    }));
    running.catch(() => undefined); // awaited below, on success and on failure
    try {
      if (!this.driver.backup) throw new BackupError('BackupUnsupported', 'This target cannot take backups.');
      const instance = instanceSpecOf(db, this.catalog, await this.client.credentials(db));
      const { stored, facts, tool, format, readBack } = await this.dump(key, instance);
      this.crash.reach('backup.object-stored');
      const seen =
        readBack ??
        (await this.store.stat(key).catch((err: unknown) => {
          throw new BackupError(
            'StoreUnreachable',
            `Reading the object back failed: ${(err as Error).message}`,
          );
        }));
      if (!seen)
        throw new BackupError(
          'ObjectMissing',
          `${key} is not in ${this.store.description} after the upload.`,
        );
      if (seen.size !== stored.size || seen.etag !== stored.etag) {
        throw new BackupError(
          'ChecksumMismatch',
          `The store holds ${seen.size} bytes tagged ${seen.etag}; Kumo sent ${stored.size} bytes tagged ${stored.etag}.`,
        );
      }
      await running;
      const completedAt = new Date().toISOString();
      const manifest = {
        kind: 'KumoBackupManifest',
        backup: backup.metadata.name,
        project: backup.metadata.project,
        database: db.metadata.name,
        databaseUid: dbUid,
        engine: spec.engine,
        version: spec.version,
        tool,
        format,
        startedAt,
        completedAt,
        size: stored.size,
        sha256: stored.sha256,
        tables: facts.tables,
      };
      await this.store
        .put(`${key}.manifest.json`, once(Buffer.from(JSON.stringify(manifest, null, 2))))
        .catch((err: unknown) => {
          throw new BackupError('UploadFailed', `Writing the manifest failed: ${(err as Error).message}`);
        });
      this.crash.reach('backup.manifest-stored');
      // Everything else first: whoever sees the final phase also sees the event and the database's condition.
      await this.client.event(
        backup,
        'Normal',
        'BackupSucceeded',
        `${stored.size} bytes, sha256 ${stored.sha256.slice(0, 12)}…`,
      );
      await this.setHealth(
        db,
        true,
        'LastBackupSucceeded',
        `backup ${backup.metadata.name} succeeded at ${completedAt}`,
      );
      await this.setBackup(backup, (s) => ({
        ...s,
        phase: 'Succeeded',
        completedAt,
        tool,
        tables: facts.tables,
        object: {
          store: this.store.description,
          key,
          size: stored.size,
          sha256: stored.sha256,
          etag: stored.etag,
          format,
        },
        conditions: setCondition(s.conditions as Condition[] | undefined, {
          type: 'Succeeded',
          status: 'True',
          reason: 'Verified',
          message: `${stored.size} bytes stored and read back with the expected size and checksum`,
        }),
      }));
      return 'Succeeded';
    } catch (caught) {
      const err =
        caught instanceof BackupError
          ? caught
          : new BackupError('InternalError', String((caught as Error)?.message ?? caught));
      await this.store.delete(key).catch(() => undefined);
      await this.store.delete(`${key}.manifest.json`).catch(() => undefined);
      await running.catch(() => undefined);
      await this.fail(backup, db, err);
      return 'Failed';
    } finally {
      this.busy.delete(dbUid);
      this.taking.delete(backup.metadata.uid);
    }
  }

  /**
   * Dumps the instance into key: a store with local files takes the dump tool's output directly
   * (no copy through Kumo; its commit reads the object back, which is then the read-back check), any
   * other gets it streamed. Throws BackupError.
   */
  private async dump(
    key: string,
    instance: InstanceSpec,
  ): Promise<{
    stored: StoredObject;
    facts: DataFacts;
    tool: string;
    format: string;
    readBack?: ObjectInfo;
  }> {
    const local = await this.store.openLocal?.(key).catch((err: unknown) => {
      throw new BackupError('UploadFailed', (err as Error).message);
    });
    const stream = await this.driver.backup!(instance, local?.fd).catch(async (err: unknown) => {
      await local?.abort();
      throw asBackupError(err, 'DumpFailed');
    });
    const { tool, format } = stream;
    this.crash.reach('backup.dump-started');
    if (local) {
      const facts = await stream.facts.catch(async (err: unknown) => {
        await local.abort();
        throw asBackupError(err, 'DumpFailed');
      });
      const stored = await local.commit().catch((err: unknown) => {
        throw new BackupError('UploadFailed', (err as Error).message);
      });
      return { stored, facts, tool, format, readBack: { size: stored.size, etag: stored.etag } };
    }
    let stored: StoredObject;
    try {
      stored = await this.store.put(key, stream.body!);
    } catch (err) {
      (stream.body as { destroy?: () => void }).destroy?.();
      throw new BackupError('UploadFailed', (err as Error).message);
    }
    const facts = await stream.facts.catch((err: unknown) => {
      throw asBackupError(err, 'DumpFailed');
    });
    return { stored, facts, tool, format };
  }

  /** Marks a backup Failed, loudly: status, a Warning event, and BackupHealthy=False on its database. */
  async fail(backup: Resource, db: Resource | undefined, err: BackupError): Promise<void> {
    await this.client.event(backup, 'Warning', 'BackupFailed', `${err.reason}: ${err.message}`);
    if (db)
      await this.setHealth(db, false, err.reason, `backup ${backup.metadata.name} failed: ${err.message}`);

    await this.setBackup(backup, (s) => ({
      ...s,
      phase: 'Failed',
      completedAt: new Date().toISOString(),
      conditions: setCondition(s.conditions as Condition[] | undefined, {
        type: 'Succeeded',
        status: 'False',
        reason: err.reason,
        message: err.message,
      }),
    }));
  }

  /**
   * Restores the backup into a scratch instance, compares its data with the facts recorded at
   * backup time and the object's checksum, records the result and the restore time, and removes the
   * scratch instance.
   */
  async verify(backup: Resource): Promise<void> {
    const status = backup.status as BackupStatus;
    const requestedAt = (backup.spec as { verifyRequestedAt?: string }).verifyRequestedAt!;
    const setVerification = (v: NonNullable<BackupStatus['verification']>) =>
      this.setBackup(backup, (s) => ({ ...s, verification: v }));
    this.verifying.add(backup.metadata.uid);
    try {
      await this.verifyOnce(backup, status, requestedAt, setVerification);
    } finally {
      this.verifying.delete(backup.metadata.uid);
    }
  }

  private async verifyOnce(
    backup: Resource,
    status: BackupStatus,
    requestedAt: string,
    setVerification: (v: NonNullable<BackupStatus['verification']>) => Promise<void>,
  ): Promise<void> {
    await setVerification({ state: 'Running', requestedAt, message: 'restoring into a scratch instance' });
    // One scratch instance per backup: a verification a stop interrupted left its instance behind,
    // and the next one removes it before starting afresh.
    const scratch = scratchSpec(this.catalog, backup.metadata.uid, status);
    await this.driver.delete(scratch.uid);
    let result: { ok: boolean; message: string; durationMs?: number };
    try {
      if (!this.driver.restore || !this.driver.dataFacts)
        throw new BackupError('VerifyUnsupported', 'This target cannot restore.');
      await this.driver.apply(scratch);
      this.crash.reach('verify.scratch-ready');
      const started = Date.now();
      const sha = createHash('sha256');
      await this.driver.restore(scratch, hashing(await this.store.get(status.object!.key), sha), {
        replace: false,
      });
      const durationMs = Date.now() - started;
      this.crash.reach('verify.restored');
      const digest = sha.digest('hex');
      if (digest !== status.object!.sha256) {
        result = {
          ok: false,
          durationMs,
          message: `The object's SHA-256 is ${digest}, not ${status.object!.sha256} as recorded: it was changed or corrupted.`,
        };
      } else {
        const facts = await this.driver.dataFacts(scratch);
        const engine = requireEngine(scratch.engine);
        // Facts from the dump's own snapshot are compared; facts taken just after a snapshot
        // (writes in between would differ) are reported, not compared.
        const differences = engine.capabilities.factsFromSnapshot
          ? compareFacts(status.tables ?? [], facts)
          : undefined;
        result = differences
          ? { ok: false, durationMs, message: `The restored data differs from the backup: ${differences}` }
          : {
              ok: true,
              durationMs,
              message: `restored in ${durationMs} ms; ${engine.backup.describeFacts(facts)}`,
            };
      }
    } catch (err) {
      const e = asBackupError(err, 'RestoreFailed');
      result = { ok: false, message: `${e.reason}: ${e.message}` };
    } finally {
      await this.driver.delete(scratch.uid).catch(() => undefined);
    }
    this.crash.reach('verify.scratch-removed');
    // The event and the database's condition first: whoever sees the result sees them too.
    await this.client.event(
      backup,
      result.ok ? 'Normal' : 'Warning',
      result.ok ? 'Verified' : 'VerificationFailed',
      result.message,
    );
    if (!result.ok) {
      const db = await this.client.get({
        kind: 'Database',
        project: backup.metadata.project ?? '',
        name: (backup.spec as { database: string }).database,
      });
      if (db && db.metadata.uid === status.databaseUid) {
        await this.setHealth(
          db,
          false,
          'VerificationFailed',
          `backup ${backup.metadata.name}: ${result.message}`,
        );
      }
    }
    await setVerification({
      state: result.ok ? 'Passed' : 'Failed',
      requestedAt,
      verifiedAt: new Date().toISOString(),
      ...(result.durationMs !== undefined ? { restoreDurationMs: result.durationMs } : {}),
      message: result.message,
    });
  }

  /**
   * Loads a Succeeded backup into a database's instance, and only into it. Checks first that the
   * backup fits (engine, version) and that the object is there as recorded. Throws DriverError.
   */
  async restoreInto(
    db: Resource,
    instance: InstanceSpec,
    backupName: string,
    replace: boolean,
  ): Promise<number> {
    const backup = await this.client.get({
      kind: 'Backup',
      project: db.metadata.project ?? '',
      name: backupName,
    });
    const status = backup?.status as BackupStatus | undefined;
    if (!backup || status?.phase !== 'Succeeded' || !status.object) {
      throw new DriverError(
        'BackupNotUsable',
        `Backup "${backupName}" does not exist or has not succeeded.`,
        true,
      );
    }
    if (status.engine !== instance.engine || status.version !== instance.version) {
      throw new DriverError(
        'BackupNotUsable',
        `Backup "${backupName}" is of ${status.engine} ${status.version}; this database is ${instance.engine} ${instance.version}.`,
        true,
      );
    }
    if (!this.driver.restore)
      throw new DriverError('RestoreUnsupported', 'This target cannot restore.', true);
    const seen = await this.store.stat(status.object.key).catch((err: unknown) => {
      throw new DriverError('StoreUnreachable', (err as Error).message);
    });
    if (!seen || seen.size !== status.object.size || seen.etag !== status.object.etag) {
      throw new DriverError(
        'BackupCorrupted',
        `The object of backup "${backupName}" is ${seen ? `${seen.size} bytes tagged ${seen.etag}` : 'missing'}; it was stored as ${status.object.size} bytes tagged ${status.object.etag}.`,
        true,
      );
    }
    const started = Date.now();
    await this.driver.restore(instance, await this.store.get(status.object.key), { replace });
    this.crash.reach('restore.loaded');
    return Date.now() - started;
  }

  /** Removes a backup's object and manifest from the store. */
  async deleteObjects(backup: Resource): Promise<void> {
    const key = (backup.status as BackupStatus).object?.key;
    if (!key) return;
    await this.store.delete(key);
    this.crash.reach('backup.delete.object-removed');
    await this.store.delete(`${key}.manifest.json`);
  }

  /**
   * Removes what an interrupted take of this backup stored or left half-written (its key follows
   * from what its status recorded when it started; nothing when it never started).
   */
  async discardInterrupted(backup: Resource): Promise<void> {
    const status = backup.status as BackupStatus;
    if (!status.databaseUid || !status.engine) return;
    const key = objectKey(backup, {
      name: (backup.spec as { database: string }).database,
      uid: status.databaseUid,
      engine: status.engine,
    });
    await this.store.delete(key);
    await this.store.delete(`${key}.manifest.json`);
  }

  /** Streams a backup's object (for downloads). */
  async open(backup: Resource) {
    const key = (backup.status as BackupStatus).object?.key;
    if (!key) throw new BackupError('NoObject', 'This backup has no stored object.');
    return this.store.get(key);
  }

  /**
   * Removes the scratch instances of verifications that a stop or a crash interrupted (one whose
   * backup was deleted meanwhile would never be run again). Call before any verification runs.
   */
  async sweepScratch(): Promise<number> {
    const scratch = (await this.driver.instances()).filter((uid) => uid.startsWith(SCRATCH_PREFIX));
    for (const uid of scratch) await this.driver.delete(uid);
    return scratch.length;
  }

  private async setBackup(
    backup: Resource,
    compute: (status: Record<string, unknown>) => Record<string, unknown>,
  ) {
    await this.client.updateStatus(
      keyOf(backup),
      (current) => compute(current.status),
      backup.metadata.generation,
    );
  }

  private async setHealth(db: Resource, ok: boolean, reason: string, message: string): Promise<void> {
    await this.client.updateStatus(keyOf(db), (current) => ({
      ...current.status,
      conditions: setCondition(current.status.conditions as Condition[] | undefined, {
        type: 'BackupHealthy',
        status: ok ? 'True' : 'False',
        reason,
        message,
      }),
    }));
  }
}

/** Where a backup's object lives: by project, database name and uid, backup name and uid. */
function objectKey(backup: Resource, db: { name: string; uid: string; engine: string }): string {
  const ext = requireEngine(db.engine).backup.extension;
  return `${backup.metadata.project}/${db.name}/${db.uid}/${backup.metadata.name}-${backup.metadata.uid}.${ext}`;
}

function keyOf(r: Resource): ResourceKey {
  return { kind: r.kind, project: r.metadata.project ?? '', name: r.metadata.name };
}

async function* hashing(
  body: AsyncIterable<Uint8Array>,
  hash: ReturnType<typeof createHash>,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    hash.update(chunk);
    yield chunk;
  }
}

async function* once(data: Buffer): AsyncGenerator<Uint8Array> {
  yield data;
}
