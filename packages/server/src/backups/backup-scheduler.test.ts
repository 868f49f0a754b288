import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DatabaseTestKumo, databaseHelpers, startKumoWithProject } from '../testing/database-helpers.js';
import { waitFor } from '../testing/wait.js';

// The real scheduler of a real Kumo, ticked with chosen clocks; real backups of a real PostgreSQL.
let t: DatabaseTestKumo;
const DB = '/v1/projects/shop/databases';
const BACKUPS = '/v1/projects/shop/backups';
beforeAll(async () => {
  t = await startKumoWithProject(inject('pg'), 'shop');
}, 60_000);
afterAll(() => t?.stop());

const { json, ready } = databaseHelpers(() => t, 'shop');

async function scheduled(db: string): Promise<any[]> {
  const list = await json(
    t.request(`${BACKUPS}?labelSelector=kumo.dev/database=${db},kumo.dev/scheduled=true`),
  );
  return list.items.sort((a: any, b: any) => a.metadata.name.localeCompare(b.metadata.name));
}

function allFinished(db: string, count: number): Promise<any[]> {
  return waitFor(async () => {
    const items = await scheduled(db);
    return items.length === count && items.every((b) => ['Succeeded', 'Failed'].includes(b.status.phase))
      ? items
      : undefined;
  }, `${count} finished backups of ${db}`);
}

describe('scheduled backups', () => {
  it('refuses a policy it cannot follow, naming the field', async () => {
    const res = await t.request(DB, {
      method: 'POST',
      json: {
        metadata: { name: 'bad-policy' },
        spec: { engine: 'postgres', version: '15', plan: 'small', backupPolicy: { schedule: '0 25 * * *' } },
      },
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as any).errors[0].field).toBe('spec.backupPolicy.schedule');
  });

  it('takes one backup for the latest missed slot, and keeps keepLast', async () => {
    // Once a year, on 1 January at 03:00 UTC: real time never reaches a slot during the test.
    const res = await t.request(DB, {
      method: 'POST',
      json: {
        metadata: { name: 'ledger' },
        spec: {
          engine: 'postgres',
          version: '15',
          plan: 'small',
          backupPolicy: { schedule: '0 3 1 1 *', timezone: 'UTC', keepLast: 2 },
        },
      },
    });
    expect(res.status).toBe(201);
    const db = await ready('ledger');
    const year = new Date(db.metadata.createdAt).getUTCFullYear();
    const at = (y: number) => new Date(Date.UTC(y, 5, 1));

    await t.kumo.backupScheduler.tick(at(year + 3)); // three slots were missed: one backup
    await t.kumo.backupScheduler.tick(at(year + 3));
    expect((await allFinished('ledger', 1)).map((b) => b.metadata.name)).toEqual([
      `ledger-${year + 3}01010300`,
    ]);

    await t.kumo.backupScheduler.tick(at(year + 4));
    await allFinished('ledger', 2);
    await t.kumo.backupScheduler.tick(at(year + 5));
    const three = await allFinished('ledger', 3);
    expect(three.every((b) => b.status.phase === 'Succeeded')).toBe(true);

    await t.kumo.backupScheduler.tick(at(year + 5)); // retention: keepLast 2
    const kept = await waitFor(async () => {
      const items = await scheduled('ledger');
      return items.length === 2 ? items : undefined;
    }, 'retention to remove the oldest');
    expect(kept.map((b) => b.metadata.name)).toEqual([
      `ledger-${year + 4}01010300`,
      `ledger-${year + 5}01010300`,
    ]);
    const status = (await json(t.request(`${DB}/ledger`))).status;
    expect(status.backups).toEqual({
      lastScheduledAt: `${year + 5}-01-01T03:00:00.000Z`,
      lastScheduledBackup: `ledger-${year + 5}01010300`,
    });
  });

  it('verifies each scheduled backup when the policy asks for it', async () => {
    await t.request(DB, {
      method: 'POST',
      json: {
        metadata: { name: 'audited' },
        spec: {
          engine: 'postgres',
          version: '15',
          plan: 'small',
          backupPolicy: { schedule: '0 3 1 1 *', verify: true },
        },
      },
    });
    const db = await ready('audited');
    await t.kumo.backupScheduler.tick(
      new Date(Date.UTC(new Date(db.metadata.createdAt).getUTCFullYear() + 1, 5)),
    );
    const verified = await waitFor(
      async () => {
        const [backup] = await scheduled('audited');
        const state = backup?.status.verification?.state;
        return state === 'Passed' || state === 'Failed' ? backup : undefined;
      },
      'the scheduled backup to be verified',
      90_000,
    );
    expect(verified.status.phase).toBe('Succeeded');
    expect(verified.status.verification).toMatchObject({
      state: 'Passed',
      requestedAt: verified.spec.verifyRequestedAt,
      restoreDurationMs: expect.any(Number),
    });
    expect(verified.status.plan).toBe('small');
  }, 150_000);

  it('removes backups of a deleted database once they are older than the retention for orphans', async () => {
    await t.request(`${DB}/ledger`, { method: 'DELETE' });
    await waitFor(
      async () => ((await t.request(`${DB}/ledger`)).status === 404 ? true : undefined),
      'ledger to be gone',
    );
    await t.kumo.backupScheduler.tick(new Date(Date.now() + 3 * 86_400_000));
    expect(await scheduled('ledger')).toHaveLength(2); // kept, listable, restorable
    await t.kumo.backupScheduler.tick(new Date(Date.now() + 8 * 86_400_000));
    await waitFor(
      async () => ((await scheduled('ledger')).length === 0 ? true : undefined),
      'orphans to be removed',
    );
  });
});
