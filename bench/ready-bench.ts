// npm run bench:ready — create → Ready → a real connection, for databases of each engine created one
// after another, against each engine's raw baseline measured in the same run (PostgreSQL: initdb +
// pg_ctl start -w + connect; Redis: redis-server start + PING; MariaDB: mariadb-install-db +
// mariadbd start + connect), as the unprivileged service user. Then the memory of the Kumo process
// with BENCH_DATABASES (50) databases running. Every answer is checked and every wait bounded: a
// bad answer, an Error phase or a database not Ready within READY_MS ends the run with exit code 1.
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { listPostgresBinaries } from '../packages/server/src/store/postgres-binaries.js';
import { ensureServiceUser } from '../packages/server/src/system/service-user.js';
import { createTestDatabase, startTestPostgres } from '../packages/server/src/testing/test-postgres.js';
import { type KumoProcess, startKumoProcess } from './kumo-process.js';

const TIMED = Number(process.env.BENCH_N ?? 20);
const BASELINE = Number(process.env.BENCH_BASELINE ?? 8);
const TOTAL = Number(process.env.BENCH_DATABASES ?? 50);
const READY_MS = 120_000;
const user = ensureServiceUser('kumo');
const as = user ? { uid: user.uid, gid: user.gid } : {};

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Credentials {
  uri: string;
  host: string;
  port: number;
  username: string;
  password: string;
  database: string;
}

/** What the benchmark knows of an engine: its raw baseline and how a client proves it connects. */
interface EngineBench {
  baseline: string;
  /** One raw start in a fresh directory until a connection succeeds; resolves with the ms it took. */
  raw: (dir: string, port: number) => Promise<number>;
  connect: (c: Credentials) => Promise<void>;
}

async function serviceDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o777);
  return dir;
}

async function retry(what: string, fn: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + READY_MS;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(5);
    }
  }
}

const ENGINES: Record<string, EngineBench> = {
  postgres: {
    baseline: 'initdb + pg_ctl start -w + connect',
    raw: async (dir, port) => {
      const bin = listPostgresBinaries({ path: process.env.PATH ?? '' })[0]!.binDir;
      const data = join(dir, 'data');
      const start = performance.now();
      execFileSync(
        join(bin, 'initdb'),
        ['-D', data, '-U', 'admin', '--auth=trust', '-E', 'UTF8', '--locale', 'C', '--no-instructions'],
        { ...as, cwd: dir, stdio: 'ignore' },
      );
      const o = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`;
      execFileSync(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-s', '-o', o, 'start'], {
        ...as,
        cwd: dir,
        stdio: 'ignore',
      });
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'admin', database: 'postgres' });
      await client.connect();
      await client.end();
      const took = performance.now() - start;
      execFileSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-s', 'stop'], {
        ...as,
        cwd: dir,
        stdio: 'ignore',
      });
      return took;
    },
    connect: async (c) => {
      const client = new pg.Client({ connectionString: c.uri });
      await client.connect();
      await client.end();
    },
  },
  redis: {
    baseline: 'redis-server start + PING',
    raw: async (dir, port) => {
      const start = performance.now();
      const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir], {
        ...as,
        cwd: dir,
        stdio: 'ignore',
      });
      try {
        await retry('raw redis-server', async () => {
          const client = new Redis({ port, lazyConnect: true, retryStrategy: () => null });
          client.on('error', () => undefined);
          try {
            await client.connect();
            if ((await client.ping()) !== 'PONG') throw new Error('no PONG');
          } finally {
            client.disconnect();
          }
        });
        return performance.now() - start;
      } finally {
        server.kill('SIGKILL');
      }
    },
    connect: async (c) => {
      const client = new Redis(c.uri, { lazyConnect: true, retryStrategy: () => null });
      client.on('error', () => undefined);
      try {
        await client.connect();
        if ((await client.ping()) !== 'PONG') throw new Error('no PONG');
      } finally {
        client.disconnect();
      }
    },
  },
  mariadb: {
    baseline: 'mariadb-install-db + mariadbd start + connect',
    raw: async (dir, port) => {
      const data = join(dir, 'data');
      await mkdir(data);
      await chmod(data, 0o777);
      const start = performance.now();
      execFileSync(
        'mariadb-install-db',
        ['--no-defaults', `--datadir=${data}`, '--skip-test-db', '--auth-root-authentication-method=normal'],
        {
          ...as,
          cwd: dir,
          stdio: 'ignore',
        },
      );
      const server = spawn(
        '/usr/sbin/mariadbd',
        [
          '--no-defaults',
          `--datadir=${data}`,
          `--socket=${join(dir, 'mysqld.sock')}`,
          `--pid-file=${join(dir, 'mysqld.pid')}`,
          `--port=${port}`,
          '--bind-address=127.0.0.1',
        ],
        { ...as, cwd: dir, stdio: 'ignore' },
      );
      try {
        await retry('raw mariadbd', async () => {
          const c = await mysql.createConnection({ socketPath: join(dir, 'mysqld.sock'), user: 'root' });
          await c.end();
        });
        return performance.now() - start;
      } finally {
        server.kill('SIGKILL');
      }
    },
    connect: async (c) => {
      const conn = await mysql.createConnection({
        host: c.host,
        port: c.port,
        user: c.username,
        password: c.password,
        database: c.database,
      });
      await conn.end();
    },
  },
};

async function rawBaseline(bench: EngineBench, engine: string): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < BASELINE; i++) {
    const dir = await serviceDir(`raw-${engine}-`);
    try {
      times.push(await bench.raw(dir, 29900 + i));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return times;
}

/** Creates one database and waits until its credentials open a real connection. */
async function createReady(
  kumo: KumoProcess,
  name: string,
  engine: string,
  version: string,
  bench: EngineBench,
): Promise<number> {
  const start = performance.now();
  await kumo.ok('/v1/projects/bench/databases', {
    method: 'POST',
    json: {
      metadata: { name },
      spec: { engine, version, plan: 'small', storageGB: 1, acl: [{ cidr: '127.0.0.1/32' }] },
    },
  });
  const deadline = Date.now() + READY_MS;
  for (;;) {
    const db = await kumo.ok(`/v1/projects/bench/databases/${name}`);
    if (db.status?.phase === 'Ready') {
      const creds = await kumo.ok(`/v1/projects/bench/databases/${name}/credentials`);
      try {
        await bench.connect(creds);
        return performance.now() - start;
      } catch {
        // not yet
      }
    }
    if (db.status?.phase === 'Error') throw new Error(`${name} failed: ${JSON.stringify(db.status)}`);
    if (Date.now() > deadline)
      throw new Error(`${name} was not Ready within ${READY_MS / 1000} s: ${JSON.stringify(db.status)}`);
    await sleep(10);
  }
}

const server = await startTestPostgres(process.env.PATH ?? '');
const kumo = await startKumoProcess(await createTestDatabase(server.connection), [
  '--db-ports',
  '25000-25299',
  '--default-quotas',
  `databases=${TOTAL + 10 * (TIMED + 1)},storageGB=100000,backups=10`,
]);
let failed = false;
const rows: string[] = [];
const ratios: string[] = [];
let rssKb = 0;
let running = 0;
try {
  await kumo.ok('/v1/orgs', { method: 'POST', json: { metadata: { name: 'bench' }, spec: {} } });
  await kumo.ok('/v1/projects', {
    method: 'POST',
    json: { metadata: { name: 'bench' }, spec: { org: 'bench' } },
  });
  const offered = (await kumo.ok('/v1/engines')).items as Array<{ engine: string; versions: string[] }>;
  const only = process.env.BENCH_ENGINES?.split(',');
  let first: { engine: string; version: string; bench: EngineBench } | undefined;
  for (const { engine, versions } of offered) {
    const bench = ENGINES[engine];
    if (only && !only.includes(engine)) continue;
    if (!bench) {
      console.log(`(no baseline for ${engine} in this benchmark: skipped)`);
      continue;
    }
    const version = versions[0]!;
    first ??= { engine, version, bench };
    const baseline = await rawBaseline(bench, engine);
    const cold = await createReady(kumo, `${engine}-cold`, engine, version, bench); // builds its template, if any
    const warm: number[] = [];
    for (let i = 0; i < TIMED; i++)
      warm.push(await createReady(kumo, `${engine}-${i}`, engine, version, bench));
    rows.push(
      `| ${engine} ${version} | baseline: ${bench.baseline} | ${baseline.length} | ${pct(baseline, 50).toFixed(0)} | ${pct(baseline, 99).toFixed(0)} |`,
      `| ${engine} ${version} | Kumo: POST → Ready → connected (first) | 1 | ${cold.toFixed(0)} | ${cold.toFixed(0)} |`,
      `| ${engine} ${version} | Kumo: POST → Ready → connected | ${warm.length} | ${pct(warm, 50).toFixed(0)} | ${pct(warm, 99).toFixed(0)} |`,
    );
    ratios.push(
      `${engine}: ratio Kumo / raw p50 ${(pct(warm, 50) / pct(baseline, 50)).toFixed(2)}, p99 ${(pct(warm, 99) / pct(baseline, 99)).toFixed(2)}`,
    );
  }
  if (!first) throw new Error('no engine this benchmark knows is offered');
  const made = (await kumo.ok('/v1/projects/bench/databases?limit=1000')).items.length as number;
  for (let i = made; i < TOTAL; i++)
    await createReady(kumo, `fill-${i}`, first.engine, first.version, first.bench);
  rssKb = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${kumo.child.pid}/status`, 'utf8'))![1]);
  const list = await kumo.ok('/v1/projects/bench/databases?limit=1000');
  running = list.items.filter((d: any) => d.status.phase === 'Ready').length;
} catch (err) {
  failed = true;
  console.error(`bench:ready failed: ${(err as Error).message}`);
} finally {
  await kumo.stop();
  await server.stop();
}
if (failed) process.exit(1);

console.log(
  `\nKumo create → Ready benchmark — ${availableParallelism()} cores (${cpus()[0]?.model}), Node ${process.version}\n`,
);
console.log('| engine | measurement | n | p50 ms | p99 ms |');
console.log('|---|---|---:|---:|---:|');
for (const row of rows) console.log(row);
console.log(`\n${ratios.join('\n')}`);
console.log(`Kumo process RSS with ${running} databases running: ${(rssKb / 1024).toFixed(0)} MB`);
