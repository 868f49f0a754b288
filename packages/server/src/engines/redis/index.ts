import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { EngineModule, InstalledVersion } from '../engine.js';
import { REDIS_PARAMETERS, REDIS_PLANS } from './catalog.js';
import { RedisLocal } from './local.js';

/** Redis: one server per database, reached through Kumo's source-address proxy. */
export const redisEngine: EngineModule = {
  name: 'redis',
  title: 'Redis',
  description: 'Redis in-memory data store',
  plans: REDIS_PLANS,
  parameters: REDIS_PARAMETERS,
  capabilities: {
    backup: true,
    factsFromSnapshot: false,
    users: true,
    durability:
      'a crash of the server, losing at most the last second of writes (append-only file, fsync every second; appendonly=false keeps only snapshots)',
  },
  client: {
    program: 'redis-cli',
    args: ['-h', '{host}', '-p', '{port}', '--user', '{username}'],
    passwordEnv: 'REDISCLI_AUTH',
    package: 'redis-tools',
    check: { args: ['PING'], expect: 'PONG' },
  },
  planLimits: () => ({}),
  discover: ({ path }) => {
    const found = findRedis(path);
    return found ? [found] : [];
  },
  local: new RedisLocal(),
  backup: {
    extension: 'rdb',
    describeFacts: (facts) =>
      `the snapshot loads (${facts.tables.map((t) => `${t.name}: ${t.rows} keys`).join(', ') || 'no keys'})`,
  },
  connectionUri: ({ host, port, username, password }) =>
    `redis://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${host}:${port}`,
};

function findRedis(path: string): InstalledVersion | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const binary = join(dir, 'redis-server');
    if (!existsSync(binary)) continue;
    try {
      const out = execFileSync(binary, ['--version'], { stdio: 'pipe' }).toString();
      const match = /v=(\d+)\./.exec(out);
      if (match) return { version: match[1]!, location: binary };
    } catch {
      // unusable: skipped
    }
  }
  return undefined;
}
