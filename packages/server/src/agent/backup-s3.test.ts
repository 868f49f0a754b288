import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DatabaseTestKumo, databaseHelpers, startKumoWithProject } from '../testing/database-helpers.js';
import { type SwiftS3, startSwiftS3 } from '../testing/swift-s3.js';
import { waitFor } from '../testing/wait.js';

// Kumo configured with the S3 store, against OpenStack Swift's s3api (real SigV4 checks), backing
// up and restoring real Redis and PostgreSQL servers.
let swift: SwiftS3;
let t: DatabaseTestKumo;
const DB = '/v1/projects/shop/databases';
const BACKUPS = '/v1/projects/shop/backups';

beforeAll(async () => {
  swift = await startSwiftS3();
  await swift.createBucket('kumo-backups');
  t = await startKumoWithProject(inject('pg'), 'shop', {
    env: {
      KUMO_BACKUP_S3_ENDPOINT: swift.endpoint,
      KUMO_BACKUP_S3_BUCKET: 'kumo-backups',
      KUMO_BACKUP_S3_PREFIX: 'test-kumo',
      KUMO_BACKUP_S3_ACCESS_KEY_ID: swift.accessKeyId,
      KUMO_BACKUP_S3_SECRET_ACCESS_KEY: swift.secretAccessKey,
    },
  });
}, 90_000);
afterAll(async () => {
  await t?.stop();
  await swift?.stop();
});

const { json, get, ready } = databaseHelpers(() => t, 'shop');
const condition = (r: any, type: string) => r.status.conditions?.find((c: any) => c.type === type);

async function backup(name: string, database: string): Promise<any> {
  await t.request(BACKUPS, { method: 'POST', json: { metadata: { name }, spec: { database } } });
  return waitFor(async () => {
    const b = await json(t.request(`${BACKUPS}/${name}`));
    return ['Succeeded', 'Failed'].includes(b.status.phase) ? b : undefined;
  }, `backup ${name}`);
}

async function redis(name: string): Promise<Redis> {
  const creds = await json(t.request(`${DB}/${name}/credentials`));
  return new Redis({
    host: creds.host,
    port: creds.port,
    username: creds.username,
    password: creds.password,
  });
}

describe('backups in S3', () => {
  it('backs up Redis into S3, verifies it, and forks a new Redis from it', async () => {
    const spec = { engine: 'redis', version: '7', plan: 'small', acl: [{ cidr: '127.0.0.1/32' }] };
    await t.request(DB, { method: 'POST', json: { metadata: { name: 'cache' }, spec } });
    await ready('cache');
    const r = await redis('cache');
    for (let i = 0; i < 50; i++) await r.set(`session:${i}`, `user-${i}`);
    r.disconnect();

    const b = await backup('cache-1', 'cache');
    expect(b.status.phase).toBe('Succeeded');
    expect(b.status.object.store).toMatch(
      /^s3 http:\/\/127\.0\.0\.1:\d+ bucket kumo-backups prefix test-kumo$/,
    );
    expect(b.status.object.format).toBe('application/x-redis-rdb');
    expect(b.status.tables).toEqual([{ name: 'db0', rows: 50, checksum: '' }]);

    await t.request(`${BACKUPS}/cache-1/verify`, { method: 'POST' });
    const verified = await waitFor(async () => {
      const x = await json(t.request(`${BACKUPS}/cache-1`));
      return x.status.verification?.state === 'Passed' || x.status.verification?.state === 'Failed'
        ? x
        : undefined;
    }, 'verification');
    expect(verified.status.verification.state).toBe('Passed');

    await t.request(DB, {
      method: 'POST',
      json: { metadata: { name: 'cache-fork' }, spec: { ...spec, restoreFrom: { backup: 'cache-1' } } },
    });
    await ready('cache-fork');
    const f = await redis('cache-fork');
    expect(await f.get('session:7')).toBe('user-7');
    expect(await f.dbsize()).toBe(50);
    f.disconnect();
  });

  it('fails a backup when the store is down, loudly, and succeeds again when it is back', async () => {
    await swift.stopProxy();
    try {
      const failed = await backup('cache-2', 'cache');
      expect(failed.status.phase).toBe('Failed');
      expect(condition(failed, 'Succeeded')).toMatchObject({ status: 'False', reason: 'UploadFailed' });
      expect(condition(await get('cache'), 'BackupHealthy')).toMatchObject({
        status: 'False',
        reason: 'UploadFailed',
      });
      const events = (await json(t.request(`${BACKUPS}/cache-2/events`))).items;
      expect(events.find((e: any) => e.reason === 'BackupFailed')).toMatchObject({ type: 'Warning' });
    } finally {
      await swift.startProxy();
    }
    expect((await backup('cache-3', 'cache')).status.phase).toBe('Succeeded');
    expect(condition(await get('cache'), 'BackupHealthy')).toMatchObject({ status: 'True' });
  });
});
