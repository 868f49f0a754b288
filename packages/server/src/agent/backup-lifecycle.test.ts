import { readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { queryFrom } from '../testing/pg-connect.js';
import { type DatabaseTestKumo, databaseHelpers, startKumoWithProject } from '../testing/database-helpers.js';
import { waitFor } from '../testing/wait.js';

// Real PostgreSQL servers, real pg_dump and pg_restore, the filesystem object store, all through
// Kumo's HTTP API.
let t: DatabaseTestKumo;
const DB = '/v1/projects/shop/databases';
const BACKUPS = '/v1/projects/shop/backups';

beforeAll(async () => {
  // Usage is reported every second, so that a backup's metered bytes show at once.
  t = await startKumoWithProject(inject('pg'), 'shop', { env: { KUMO_USAGE_REPORT_SECONDS: '1' } });
}, 60_000);
afterAll(() => t?.stop());

const { json, get, ready } = databaseHelpers(() => t, 'shop');

async function sql(db: string, text: string): Promise<any[]> {
  const { uri } = await json(t.request(`${DB}/${db}/credentials`));
  return queryFrom(uri, '127.0.0.1', text);
}

async function createDb(name: string, extra: Record<string, unknown> = {}) {
  const res = await t.request(DB, {
    method: 'POST',
    json: {
      metadata: { name },
      spec: { engine: 'postgres', version: '15', plan: 'small', acl: [{ cidr: '127.0.0.1/32' }], ...extra },
    },
  });
  expect(res.status).toBe(201);
  return ready(name);
}

async function backup(name: string, database: string): Promise<any> {
  const res = await t.request(BACKUPS, { method: 'POST', json: { metadata: { name }, spec: { database } } });
  expect(res.status).toBe(201);
  return finished(name);
}

function finished(name: string): Promise<any> {
  return waitFor(async () => {
    const b = await json(t.request(`${BACKUPS}/${name}`));
    return b.status.phase === 'Succeeded' || b.status.phase === 'Failed' ? b : undefined;
  }, `backup ${name} to finish`);
}

function verified(name: string): Promise<any> {
  return waitFor(async () => {
    const b = await json(t.request(`${BACKUPS}/${name}`));
    const v = b.status.verification;
    return v && v.requestedAt === b.spec.verifyRequestedAt && v.state !== 'Running' ? b : undefined;
  }, `backup ${name} to be verified`);
}

const condition = (r: any, type: string) => r.status.conditions?.find((c: any) => c.type === type);
const events = async (path: string) => (await json(t.request(`${path}/events`))).items as any[];

describe('PostgreSQL backups', () => {
  it('backs up with a checked upload, the data facts of the same snapshot, and a manifest', async () => {
    await createDb('orders');
    await sql('orders', 'CREATE TABLE items (id int PRIMARY KEY, name text)');
    await sql('orders', "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 2000) g");

    const b = await backup('orders-1', 'orders');
    expect(b.status.phase).toBe('Succeeded');
    expect(b.status.object).toMatchObject({
      store: expect.stringMatching(/^filesystem /),
      size: expect.any(Number),
      format: 'application/x-pg-dump',
    });
    expect(b.status.object.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(b.status.tables).toEqual([{ name: 'public.items', rows: 2000, checksum: expect.any(String) }]);
    expect(b.status.tool).toMatch(/^pg_dump/);
    expect(condition(b, 'Succeeded')).toMatchObject({ status: 'True', reason: 'Verified' });
    const files = await readdir(join(t.dataDir, 'backups', 'shop', 'orders'), { recursive: true });
    expect(files.some((f) => String(f).endsWith('.dump.manifest.json'))).toBe(true);
    expect(condition(await get('orders'), 'BackupHealthy')).toMatchObject({
      status: 'True',
      reason: 'LastBackupSucceeded',
    });
  });

  it('never runs two backups of one database at once', async () => {
    await Promise.all(
      ['orders-a', 'orders-b', 'orders-c'].map((name) =>
        t.request(BACKUPS, { method: 'POST', json: { metadata: { name }, spec: { database: 'orders' } } }),
      ),
    );
    const done = await Promise.all(['orders-a', 'orders-b', 'orders-c'].map(finished));
    expect(done.map((b) => b.status.phase)).toEqual(['Succeeded', 'Succeeded', 'Succeeded']);
    const spans = done
      .map((b) => [Date.parse(b.status.startedAt), Date.parse(b.status.completedAt)] as const)
      .sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    for (const name of ['orders-a', 'orders-b', 'orders-c'])
      await t.request(`${BACKUPS}/${name}`, { method: 'DELETE' });
  });

  it('verifies by restoring into a scratch instance and comparing counts and checksums', async () => {
    const res = await t.request(`${BACKUPS}/orders-1/verify`, { method: 'POST' });
    expect(res.status).toBe(202);
    const b = await verified('orders-1');
    expect(b.status.verification).toMatchObject({ state: 'Passed', restoreDurationMs: expect.any(Number) });
    expect(b.status.verification.message).toMatch(/row counts and checksums match/);
    // The scratch instance is gone again.
    const instances = await readdir(join(t.dataDir, 'databases'));
    expect(instances.filter((d) => d.startsWith('scratch-'))).toEqual([]);
  });

  it('forks a new database from a backup, leaving the source untouched', async () => {
    await sql('orders', 'DELETE FROM items WHERE id > 1500'); // the source moves on
    const fork = await createDb('orders-fork', { restoreFrom: { backup: 'orders-1' } });
    expect(fork.status.restore).toMatchObject({ backup: 'orders-1', mode: 'fork', state: 'Succeeded' });
    expect((await sql('orders-fork', 'SELECT count(*)::int AS n FROM items'))[0].n).toBe(2000);
    expect((await sql('orders', 'SELECT count(*)::int AS n FROM items'))[0].n).toBe(1500);
    expect((await events(`${DB}/orders-fork`)).map((e) => e.reason)).toContain('Restored');
  });

  it('restores in place only when asked, after a safety backup of the current data', async () => {
    const res = await t.request(`${DB}/orders/restore`, { method: 'POST', json: { backup: 'orders-1' } });
    expect(res.status).toBe(202);
    const db = await waitFor(async () => {
      const d = await get('orders');
      return d.status.restore?.state === 'Succeeded' || d.status.restore?.state === 'Failed' ? d : undefined;
    }, 'the in-place restore');
    expect(db.status.restore).toMatchObject({ mode: 'in-place', state: 'Succeeded', backup: 'orders-1' });
    expect((await sql('orders', 'SELECT count(*)::int AS n FROM items'))[0].n).toBe(2000);
    const safety = await json(t.request(`${BACKUPS}/${db.status.restore.safetyBackup}`));
    expect(safety.status.phase).toBe('Succeeded');
    expect(safety.status.tables[0].rows).toBe(1500); // what was there before
    expect(safety.metadata.labels['kumo.dev/safety-backup']).toBe('true');
  });

  it('detects a corrupted object on verification and says so on the database', async () => {
    const b = await json(t.request(`${BACKUPS}/orders-1`));
    const file = join(t.dataDir, 'backups', b.status.object.key);
    await writeFile(file, 'PGDMP rotten');
    await t.request(`${BACKUPS}/orders-1/verify`, { method: 'POST' });
    const after = await verified('orders-1');
    expect(after.status.verification.state).toBe('Failed');
    expect((await events(`${BACKUPS}/orders-1`)).map((e) => e.reason)).toContain('VerificationFailed');
    expect(condition(await get('orders'), 'BackupHealthy')).toMatchObject({
      status: 'False',
      reason: 'VerificationFailed',
    });
    // A fork from it is refused before anything is written, and the database stays out of Ready.
    await t.request(DB, {
      method: 'POST',
      json: {
        metadata: { name: 'from-rotten' },
        spec: { engine: 'postgres', version: '15', plan: 'small', restoreFrom: { backup: 'orders-1' } },
      },
    });
    const rotten = await waitFor(async () => {
      const d = await get('from-rotten');
      return d.status.phase === 'Error' ? d : undefined;
    }, 'the fork of a corrupted backup to fail');
    expect(condition(rotten, 'Ready')).toMatchObject({ status: 'False', reason: 'BackupCorrupted' });
    // And stays so when reconciled again (it must not drift to a vaguer reason, nor to Ready).
    await t.request(`${DB}/from-rotten`, {
      method: 'PATCH',
      json: { metadata: { labels: { again: 'yes' } } },
    });
    await waitFor(async () => {
      const warnings = (await events(`${DB}/from-rotten`)).find((e) => e.reason === 'BackupCorrupted');
      return warnings && warnings.count >= 2 ? true : undefined;
    }, 'a second reconcile of the failed fork');
    const again = await get('from-rotten');
    expect(again.status.phase).toBe('Error');
    expect(condition(again, 'Ready')).toMatchObject({ status: 'False', reason: 'BackupCorrupted' });
  });

  it('fails a backup loudly when the store cannot take it, and never calls it Succeeded', async () => {
    const root = join(t.dataDir, 'backups');
    await rename(root, `${root}.away`);
    await writeFile(root, 'not a directory'); // the store is broken
    try {
      const b = await backup('orders-2', 'orders');
      expect(b.status.phase).toBe('Failed');
      expect(condition(b, 'Succeeded')).toMatchObject({ status: 'False', reason: 'UploadFailed' });
      expect((await events(`${BACKUPS}/orders-2`)).find((e) => e.reason === 'BackupFailed')).toMatchObject({
        type: 'Warning',
      });
      expect(condition(await get('orders'), 'BackupHealthy')).toMatchObject({
        status: 'False',
        reason: 'UploadFailed',
      });
    } finally {
      const { rm } = await import('node:fs/promises');
      await rm(root, { force: true });
      await rename(`${root}.away`, root);
    }
    const ok = await backup('orders-3', 'orders');
    expect(ok.status.phase).toBe('Succeeded');
    expect(condition(await get('orders'), 'BackupHealthy')).toMatchObject({ status: 'True' });
  });

  it('takes again a backup that was Running when Kumo stopped, and fails it after 3 interrupted tries', async () => {
    const b = await backup('orders-interrupted', 'orders');
    expect(b.status).toMatchObject({ phase: 'Succeeded', attempts: 1 });
    // As after a restart mid-backup: the status says Running, and no agent is taking it.
    const interrupt = async (attempts: number) => {
      const res = await t.request(`${BACKUPS}/orders-interrupted/status`, {
        method: 'PATCH',
        json: { phase: 'Running', completedAt: null, attempts },
      });
      expect(res.status).toBe(200);
      await t.request(`${BACKUPS}/orders-interrupted`, {
        method: 'PATCH',
        json: { metadata: { labels: { nudge: String(attempts) } } },
      });
    };
    await interrupt(1);
    const retaken = await waitFor(async () => {
      const x = await json(t.request(`${BACKUPS}/orders-interrupted`));
      return x.status.phase === 'Succeeded' && x.status.attempts === 2 ? x : undefined;
    }, 'the interrupted backup to be taken again');
    expect(retaken.status.object.sha256).toMatch(/^[0-9a-f]{64}$/);
    const events = (await json(t.request(`${BACKUPS}/orders-interrupted/events`))).items;
    expect(events.map((e: { reason: string }) => e.reason)).toContain('Interrupted');

    await interrupt(3);
    const failed = await waitFor(async () => {
      const x = await json(t.request(`${BACKUPS}/orders-interrupted`));
      return x.status.phase === 'Failed' ? x : undefined;
    }, 'the backup interrupted 3 times to be failed');
    expect(condition(failed, 'Succeeded')).toMatchObject({ status: 'False', reason: 'Interrupted' });
    await t.request(`${BACKUPS}/orders-interrupted`, { method: 'DELETE' });
  });

  it('takes up a verification that a stop interrupted, instead of leaving it Running', async () => {
    await backup('orders-v', 'orders');
    await t.request(`${BACKUPS}/orders-v/verify`, { method: 'POST' });
    const first = await verified('orders-v');
    // As after a restart mid-verification: Running, and nobody verifying.
    await t.request(`${BACKUPS}/orders-v/status`, {
      method: 'PATCH',
      json: { verification: { ...first.status.verification, state: 'Running', verifiedAt: null } },
    });
    await t.request(`${BACKUPS}/orders-v`, {
      method: 'PATCH',
      json: { metadata: { labels: { nudge: 'now' } } },
    });
    const again = await verified('orders-v');
    expect(again.status.verification.state).toBe('Passed');
    expect(Date.parse(again.status.verification.verifiedAt)).toBeGreaterThan(
      Date.parse(first.status.verification.verifiedAt),
    );
    await t.request(`${BACKUPS}/orders-v`, { method: 'DELETE' });
  });

  it('keeps the backups of a deleted database, listable and restorable', async () => {
    await backup('fork-1', 'orders-fork');
    const del = await t.request(`${DB}/orders-fork`, { method: 'DELETE' });
    expect([200, 202]).toContain(del.status);
    await waitFor(
      async () => ((await t.request(`${DB}/orders-fork`)).status === 404 ? true : undefined),
      'the fork to be gone',
    );
    expect((await json(t.request(`${BACKUPS}/fork-1`))).status.phase).toBe('Succeeded');
    await createDb('orders-reborn', { restoreFrom: { backup: 'fork-1' } });
    expect((await sql('orders-reborn', 'SELECT count(*)::int AS n FROM items'))[0].n).toBe(2000);
  });

  it('meters a stored backup’s bytes from when it was stored until it is deleted', async () => {
    const b = await backup('metered-1', 'orders');
    expect(b.status.phase).toBe('Succeeded');
    const usageOf = async () =>
      ((await json(t.request('/v1/projects/shop/usage'))).resources as any[]).find(
        (r) => r.uid === b.metadata.uid,
      );
    const held = await waitFor(async () => {
      const r = await usageOf();
      return r?.lines.some((l: any) => l.meter === 'backup.storage' && l.seconds > 1) ? r : undefined;
    }, 'the backup’s bytes to be reported');
    expect(held).toMatchObject({ kind: 'Backup', name: 'metered-1', deleted: false });
    for (const line of held.lines) {
      expect(line).toMatchObject({ meter: 'backup.storage', unit: 'byte-second' });
      expect(BigInt(line.quantity)).toBe(BigInt(b.status.object.size) * BigInt(line.seconds));
    }
    // A failed backup (the broken store's, above) stores nothing and is never metered.
    const failed = await json(t.request(`${BACKUPS}/orders-2`));
    expect(failed.status.phase).toBe('Failed');

    await t.request(`${BACKUPS}/metered-1`, { method: 'DELETE' });
    await waitFor(
      async () => ((await t.request(`${BACKUPS}/metered-1`)).status === 404 ? true : undefined),
      'the backup to be gone',
    );
    const gone = await usageOf();
    expect(gone.deleted).toBe(true);
    const seconds = gone.lines.reduce((sum: number, l: any) => sum + l.seconds, 0);
    // Reported up to its deletion: whatever is missing is less than one report interval's worth.
    expect(gone.coverage.observedSeconds).toBe(Math.min(seconds, gone.coverage.expectedSeconds));
    expect(gone.coverage.missingSeconds).toBeLessThanOrEqual(2);
    const usage = (await json(t.request('/v1/projects/shop/usage'))).resources as any[];
    expect(usage.some((r) => r.uid === failed.metadata.uid)).toBe(false);
  });

  it('downloads the dump, and deleting a backup removes its object', async () => {
    const b = await json(t.request(`${BACKUPS}/orders-3`));
    const res = await t.request(`${BACKUPS}/orders-3/download`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="orders-3.dump"');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.length).toBe(b.status.object.size);
    expect(bytes.subarray(0, 5).toString()).toBe('PGDMP');

    await t.request(`${BACKUPS}/orders-3`, { method: 'DELETE' });
    await waitFor(
      async () => ((await t.request(`${BACKUPS}/orders-3`)).status === 404 ? true : undefined),
      'the backup to be gone',
    );
    const left = await readdir(join(t.dataDir, 'backups'), { recursive: true });
    expect(left.filter((f) => String(f).includes(b.metadata.uid))).toEqual([]);
  });
});
