import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisFrom } from '../redis-connect.js';
import type { EngineProbe, ProbeContext } from '../engine-suite.js';

/** A setting as the server runs it, asked as Kumo's admin over its socket (customers may not). */
async function configGet({ instanceDir }: ProbeContext, name: string): Promise<string> {
  const state = JSON.parse(await readFile(join(instanceDir, 'instance.json'), 'utf8'));
  const admin = new Redis({
    path: join(instanceDir, 'run', 'redis.sock'),
    username: 'kumo_admin',
    password: state.adminPassword,
    lazyConnect: true,
    retryStrategy: () => null,
  });
  admin.on('error', () => undefined);
  try {
    await admin.connect();
    return ((await admin.config('GET', name)) as string[])[1]!;
  } finally {
    admin.disconnect();
  }
}

/** The shared engine suite's view of Redis: keys, over raw RESP from a chosen source address. */
export const redisProbe: EngineProbe = {
  engine: 'redis',
  put: async (c, from, key, value) => {
    const out = await redisFrom(c.port, from, [
      ['AUTH', c.username, c.password],
      ['SET', key, value],
    ]);
    if (out !== '+OK\r\n+OK\r\n+OK\r\n') throw new Error(`refused: ${JSON.stringify(out)}`);
  },
  get: async (c, from, key) => {
    const out = await redisFrom(c.port, from, [
      ['AUTH', c.username, c.password],
      ['GET', key],
    ]);
    const reply = /^\+OK\r\n(\$-1|\$\d+\r\n(.*?))\r\n\+OK\r\n$/s.exec(out);
    if (!reply) throw new Error(`refused: ${JSON.stringify(out)}`);
    return reply[1] === '$-1' ? undefined : reply[2];
  },
  administerRefused: async (c, from) =>
    /NOPERM/.test(
      await redisFrom(c.port, from, [
        ['AUTH', c.username, c.password],
        ['CONFIG', 'SET', 'maxmemory', '1gb'],
      ]),
    ),
  reload: {
    parameters: { 'maxmemory-policy': 'allkeys-lru' },
    running: (ctx) => configGet(ctx, 'maxmemory-policy'),
    expect: 'allkeys-lru',
  },
  restart: { parameters: { databases: 32 }, running: (ctx) => configGet(ctx, 'databases'), expect: '32' },
  pidFiles: ['run/redis.pid', 'run/acl-proxy.pid'],
};
