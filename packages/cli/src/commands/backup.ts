import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Resource, backupKind, databaseKind, sha256OfReprDigest } from '@kumo/api';
import type { Command } from 'commander';
import { CliError, EXIT } from '../core/exit-codes.js';
import { collectionPath, itemPath } from '../core/kinds.js';
import { type Invocation, type Runtime, invocation } from '../core/runtime.js';
import { waitFor } from '../core/wait.js';
import { finish } from './resources.js';

/** The backup commands beyond list/get/delete/label: create, verify, download, and db restore. */
export function registerBackupCommands(program: Command, runtime: Runtime): void {
  const backup = program.commands.find((c) => c.name() === 'backup')!;
  backup
    .command('create')
    .description(
      'Back up a database now. With --wait, returns when the backup is stored and checked (or failed).',
    )
    .argument('[name]', 'the backup name (default: <database>-<UTC time>)')
    .requiredOption('--db <database>', 'the database to back up')
    .option('--verify', 'verify it once it is stored (restore into a scratch instance and compare)')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo backup create --db orders --wait\n  kumo backup create before-migration --db orders --verify --wait -o json',
    )
    .action(async (name: string | undefined, o: { db: string; verify?: boolean }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const stamp = new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '');
      const requestedAt = o.verify ? new Date().toISOString() : undefined;
      const res = await inv.client.request<Resource>('POST', collectionPath(backupKind, inv.project), {
        body: {
          metadata: { name: name ?? `${o.db.slice(0, 45)}-${stamp}` },
          spec: { database: o.db, ...(requestedAt ? { verifyRequestedAt: requestedAt } : {}) },
        },
      });
      if (requestedAt) await reportVerification(runtime, inv, res, requestedAt);
      else await finish(runtime, inv, backupKind, res, 'created');
    });

  backup
    .command('verify')
    .description(
      'Restore a backup into a scratch instance and compare its data with what was recorded at backup time.',
    )
    .argument('<name>')
    .addHelpText('after', '\nExample:\n  kumo backup verify orders-20261122030000 --wait')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const res = await inv.client.request<Resource>(
        'POST',
        `${itemPath(backupKind, inv.project, name)}/verify`,
      );
      await reportVerification(
        runtime,
        inv,
        res,
        (res.spec as { verifyRequestedAt: string }).verifyRequestedAt,
      );
    });

  backup
    .command('download')
    .description("Download a backup's dump (pg_dump custom format for pg_restore, or a Redis RDB file).")
    .argument('<name>')
    .option(
      '-f, --file <path>',
      'write it here (default: <name>.dump or <name>.rdb; "-" for standard output)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  kumo backup download orders-20261122030000\n  kumo backup download orders-20261122030000 -f - | pg_restore -l',
    )
    .action(async (name: string, o: { file?: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const res = await inv.client.raw('GET', `${itemPath(backupKind, inv.project, name)}/download`);
      const suggested =
        /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `${name}.dump`;
      const target = o.file ?? suggested;
      const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
      const recorded = sha256OfReprDigest(res.headers.get('repr-digest'));
      const hash = createHash('sha256');
      let size = 0;
      const hashing = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      const mismatch = () => {
        const got = hash.digest('hex');
        return recorded && got !== recorded
          ? `the download of backup/${name} (${size} bytes, SHA-256 ${got.slice(0, 12)}…) does not match the SHA-256 recorded when it was taken (${recorded.slice(0, 12)}…)`
          : undefined;
      };
      if (target === '-') {
        await pipeline(body, hashing, runtime.stdout);
        const wrong = mismatch();
        if (wrong)
          throw new CliError(
            `${wrong}: discard what was written. Check it: kumo backup verify ${name}`,
            EXIT.failure,
          );
        return;
      }
      // Into a temporary file first: an interrupted or wrong download never sits under the name.
      const partial = `${target}.part`;
      try {
        await pipeline(body, hashing, createWriteStream(partial, { mode: 0o600 }));
        const wrong = mismatch();
        if (wrong)
          throw new CliError(
            `${wrong}; nothing was written to ${target}. Check it: kumo backup verify ${name}`,
            EXIT.failure,
          );
        await rename(partial, target);
      } finally {
        await rm(partial, { force: true });
      }
      runtime.stderr.write(
        `backup/${name} written to ${target} (${size} bytes${recorded ? ', SHA-256 as recorded' : ''})\n`,
      );
    });

  const db = program.commands.find((c) => c.name() === 'db')!;
  db.command('restore')
    .description(
      "Replace a database's data with a backup's, in place. A safety backup of the current data is taken first. To keep the database as it is, create a new one with `kumo db create NAME --from-backup BACKUP` instead.",
    )
    .argument('<name>')
    .requiredOption('--from-backup <backup>', 'a Succeeded backup')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      '\nExample:\n  kumo db restore orders --from-backup orders-20261122030000 --yes --wait',
    )
    .action(async (name: string, o: { fromBackup: string; yes?: boolean }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      if (!o.yes) {
        throw new CliError(
          `This replaces the data of db/${name} with backup ${o.fromBackup} (after a safety backup). Add --yes to go ahead.`,
          EXIT.usage,
        );
      }
      const res = await inv.client.request<Resource>(
        'POST',
        `${itemPath(databaseKind, inv.project, name)}/restore`,
        {
          body: { backup: o.fromBackup },
        },
      );
      const requestedAt = (res.spec as { restoreInPlace: { requestedAt: string } }).restoreInPlace
        .requestedAt;
      if (!inv.wait) {
        runtime.stdout.write(`db/${name} restore from ${o.fromBackup} requested\n`);
        return;
      }
      const final = await waitFor(inv.client, collectionPath(databaseKind, inv.project), res, {
        timeoutMs: inv.timeoutMs,
        progress: runtime.stderr,
        until: (r) => {
          const restore = (r.status as { restore?: { requestedAt?: string; state: string } }).restore;
          if (restore?.requestedAt !== requestedAt || restore.state === 'Running') return undefined;
          return restore.state === 'Succeeded' ? 'done' : 'failed';
        },
        failure: (r) =>
          `restore failed: ${(r.status as { restore?: { message?: string } }).restore?.message ?? ''}`,
      });
      const restore = (final.status as { restore: { safetyBackup?: string; durationMs?: number } }).restore;
      runtime.stdout.write(
        `db/${name} restored from ${o.fromBackup} in ${restore.durationMs} ms (the data before is in backup ${restore.safetyBackup})\n`,
      );
    });
}

/**
 * Prints the verification asked for at `requestedAt`; with --wait, follows the backup until it is
 * verified (taking it first, if it is new) and exits non-zero when the backup or its verification failed.
 */
async function reportVerification(
  runtime: Runtime,
  inv: Invocation,
  res: Resource,
  requestedAt: string,
): Promise<void> {
  const name = res.metadata.name;
  type Status = { phase?: string; verification?: { state: string; requestedAt: string; message: string } };
  const final = inv.wait
    ? await waitFor(inv.client, collectionPath(backupKind, inv.project), res, {
        timeoutMs: inv.timeoutMs,
        progress: runtime.stderr,
        until: (r) => {
          const status = r.status as Status;
          if (status.phase === 'Failed') return 'failed';
          const v = status.verification;
          if (v?.requestedAt !== requestedAt || v.state === 'Running') return undefined;
          return v.state === 'Passed' ? 'done' : 'failed';
        },
        failure: (r) => {
          const status = r.status as Status & { conditions?: Array<{ type: string; message?: string }> };
          return status.phase === 'Failed'
            ? `backup failed: ${status.conditions?.find((c) => c.type === 'Succeeded')?.message ?? ''}`
            : `verification failed: ${status.verification?.message ?? ''}`;
        },
      })
    : res;
  const v = (final.status as Status).verification;
  if (inv.format !== 'table') runtime.stdout.write(JSON.stringify(final.status, null, 2) + '\n');
  else
    runtime.stdout.write(
      inv.wait && v
        ? `backup/${name} verification ${v.state}: ${v.message}\n`
        : `backup/${name} verification requested\n`,
    );
}
