import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { redisFrom } from '../testing/redis-connect.js';
import { type DatabaseTestKumo, databaseHelpers, startKumoWithProject } from '../testing/database-helpers.js';
import { waitFor } from '../testing/wait.js';

// Real redis-server processes behind Kumo's ACL proxy, driven through the HTTP API.
let t: DatabaseTestKumo;
const DB = '/v1/projects/cafe/databases';

beforeAll(async () => {
  t = await startKumoWithProject(inject('pg'), 'cafe');
});
afterAll(() => t?.stop());

const { json, get, patch, ready } = databaseHelpers(() => t, 'cafe');

const pidOf = async (db: any, file: string) =>
  Number((await readFile(join(t.dataDir, 'databases', db.metadata.uid, 'run', file), 'utf8')).split('\n')[0]);

describe('managed Redis', () => {
  let db: any;
  let creds: { username: string; password: string; port: number; uri: string };
  const as = () => ['AUTH', creds.username, creds.password];

  it('provisions a Redis with a password that serves an allowed address', async () => {
    const res = await t.request(DB, {
      method: 'POST',
      json: {
        metadata: { name: 'cache' },
        spec: { engine: 'redis', version: '7', plan: 'small', acl: [{ cidr: '127.0.0.2/32' }] },
      },
    });
    expect(res.status).toBe(201);
    db = await ready('cache');
    creds = await json(t.request(`${DB}/cache/credentials`));
    expect(creds.uri).toMatch(/^redis:\/\/cache:/);
    expect(
      await redisFrom(creds.port, '127.0.0.2', [as(), ['SET', 'greeting', 'hello'], ['GET', 'greeting']]),
    ).toBe('+OK\r\n+OK\r\n$5\r\nhello\r\n+OK\r\n');
    expect(
      await redisFrom(creds.port, '127.0.0.2', [
        ['AUTH', creds.username, 'wrong'],
        ['GET', 'greeting'],
      ]),
    ).toMatch(/^-WRONGPASS/);
    expect(await redisFrom(creds.port, '127.0.0.2', [as(), ['CONFIG', 'GET', 'maxmemory']])).toMatch(
      /NOPERM/,
    ); // customers do not administer
  });

  it('refuses addresses outside the ACL at the proxy, and applies ACL changes without a restart', async () => {
    expect(await redisFrom(creds.port, '127.0.0.3', [as(), ['PING']])).toBe('');
    const pid = await pidOf(db, 'redis.pid');
    await patch('cache', { spec: { acl: [{ cidr: '127.0.0.2/32' }, { cidr: '127.0.0.3/32' }] } });
    await ready('cache');
    await waitFor(
      async () =>
        (await redisFrom(creds.port, '127.0.0.3', [as(), ['PING']])).includes('+PONG') ? true : undefined,
      'access from 127.0.0.3',
    );
    expect(await pidOf(db, 'redis.pid')).toBe(pid);
  });

  it('reloads reloadable parameters live and restarts for restart-only ones', async () => {
    const pid = await pidOf(db, 'redis.pid');
    await patch('cache', { spec: { parameters: { 'maxmemory-policy': 'allkeys-lru', timeout: 300 } } });
    await ready('cache');
    expect(await pidOf(db, 'redis.pid')).toBe(pid);
    const events = (await json(t.request(`${DB}/cache/events`))).items.map(
      (e: { reason: string }) => e.reason,
    );
    expect(events).toContain('Reloaded');
    await patch('cache', {
      spec: { parameters: { 'maxmemory-policy': 'allkeys-lru', timeout: 300, databases: 32 } },
    });
    await ready('cache');
    expect(await pidOf(db, 'redis.pid')).not.toBe(pid);
    expect(await redisFrom(creds.port, '127.0.0.2', [as(), ['SELECT', '31']])).toBe('+OK\r\n+OK\r\n+OK\r\n');
    expect(await redisFrom(creds.port, '127.0.0.2', [as(), ['GET', 'greeting']])).toContain('hello'); // saved across the restart
  });

  it('heals a kill -9 of redis-server and of its ACL proxy', async () => {
    for (const file of ['redis.pid', 'acl-proxy.pid']) {
      const pid = await pidOf(db, file);
      process.kill(pid, 'SIGKILL');
      await waitFor(
        async () => ((await pidOf(db, file).catch(() => pid)) !== pid ? true : undefined),
        `${file} replaced`,
      );
      await ready('cache');
      expect(await redisFrom(creds.port, '127.0.0.2', [as(), ['PING']])).toContain('+PONG');
    }
    const reasons = (await json(t.request(`${DB}/cache/events`))).items.map(
      (e: { reason: string }) => e.reason,
    );
    expect(reasons).toEqual(expect.arrayContaining(['Crashed', 'Restarted']));
  });

  it('stops and starts with its data, and deletes without a trace', async () => {
    await patch('cache', { spec: { stopped: true } });
    await waitFor(
      async () => ((await get('cache')).status.phase === 'Stopped' ? true : undefined),
      'Stopped',
    );
    expect(await redisFrom(creds.port, '127.0.0.2', [['PING']]).catch(() => 'refused')).toBe('refused');
    await patch('cache', { spec: { stopped: false } });
    await ready('cache');
    expect(await redisFrom(creds.port, '127.0.0.2', [as(), ['GET', 'greeting']])).toContain('hello');

    const dir = join(t.dataDir, 'databases', db.metadata.uid);
    await t.request(`${DB}/cache`, { method: 'DELETE' });
    await waitFor(
      async () => ((await t.request(`${DB}/cache`)).status === 404 ? true : undefined),
      'deleted',
    );
    expect(existsSync(dir)).toBe(false);
    expect(await redisFrom(creds.port, '127.0.0.2', [['PING']]).catch(() => 'refused')).toBe('refused');
  });
});
