// npm run bench:ready — create → Ready (a real connection succeeds) for databases created one after
// another, against the raw baseline measured in the same run: initdb + pg_ctl start -w into a fresh
// directory. Then the memory of the Kumo process with BENCH_DATABASES (50) databases running.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { listPostgresBinaries } from '../packages/server/src/store/postgres-binaries.js';
import { ensureServiceUser } from '../packages/server/src/system/service-user.js';
import { createTestDatabase, startTestPostgres } from '../packages/server/src/testing/test-postgres.js';
import { startKumoProcess } from './kumo-process.js';

const TIMED = Number(process.env.BENCH_N ?? 20);
const BASELINE = Number(process.env.BENCH_BASELINE ?? 8);
const TOTAL = Number(process.env.BENCH_DATABASES ?? 50);

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

/** The raw way: initdb into a new directory, then pg_ctl start -w, as the unprivileged user. */
async function rawBaseline(): Promise<number[]> {
  const bin = listPostgresBinaries({ path: process.env.PATH ?? '' })[0]!.binDir;
  const user = ensureServiceUser('kumo');
  const as = user ? { uid: user.uid, gid: user.gid } : {};
  const times: number[] = [];
  for (let i = 0; i < BASELINE; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'raw-pg-'));
    execFileSync('chmod', ['0777', dir]);
    const data = join(dir, 'data');
    const start = performance.now();
    execFileSync(
      join(bin, 'initdb'),
      ['-D', data, '-U', 'admin', '--auth=trust', '-E', 'UTF8', '--locale', 'C', '--no-instructions'],
      { ...as, cwd: dir, stdio: 'ignore' },
    );
    execFileSync(
      join(bin, 'pg_ctl'),
      [
        '-D',
        data,
        '-l',
        join(dir, 'log'),
        '-w',
        '-s',
        '-o',
        `-p ${29900 + i} -k ${dir} -c listen_addresses=127.0.0.1`,
        'start',
      ],
      { ...as, cwd: dir, stdio: 'ignore' },
    );
    const client = new pg.Client({ host: '127.0.0.1', port: 29900 + i, user: 'admin', database: 'postgres' });
    await client.connect();
    await client.end();
    times.push(performance.now() - start);
    execFileSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-s', 'stop'], {
      ...as,
      cwd: dir,
      stdio: 'ignore',
    });
    await rm(dir, { recursive: true, force: true });
  }
  return times;
}

const server = await startTestPostgres(process.env.PATH ?? '');
const kumo = await startKumoProcess(await createTestDatabase(server.connection), [
  '--db-ports',
  '25000-25199',
]);
await kumo.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'bench' }, spec: {} } });
await kumo.request('/v1/projects', {
  method: 'POST',
  json: { metadata: { name: 'bench' }, spec: { org: 'bench' } },
});

/** Creates one database and waits until its credentials open a real connection. */
async function createReady(name: string): Promise<number> {
  const start = performance.now();
  await kumo.request('/v1/projects/bench/databases', {
    method: 'POST',
    json: {
      metadata: { name },
      spec: {
        engine: 'postgres',
        version: listPostgresBinaries({ path: process.env.PATH ?? '' })[0]!.majorVersion.toString(),
        plan: 'small',
        acl: [{ cidr: '127.0.0.1/32' }],
      },
    },
  });
  for (;;) {
    const db = await kumo.request(`/v1/projects/bench/databases/${name}`);
    if (db.status?.phase === 'Ready') {
      const creds = await kumo.request(`/v1/projects/bench/databases/${name}/credentials`);
      const client = new pg.Client({ connectionString: creds.uri });
      try {
        await client.connect();
        await client.end();
        return performance.now() - start;
      } catch {
        // not yet
      }
    }
    if (db.status?.phase === 'Error') throw new Error(`${name} failed: ${JSON.stringify(db.status)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const baseline = await rawBaseline();
const cold = await createReady('cold'); // includes the one-time initdb of the version's template
const warm: number[] = [];
for (let i = 0; i < TIMED; i++) warm.push(await createReady(`db-${i}`));
for (let i = TIMED + 1; i < TOTAL; i++) await createReady(`fill-${i}`);
const rssKb = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${kumo.child.pid}/status`, 'utf8'))![1]);
const list = await kumo.request('/v1/projects/bench/databases?limit=1000');
const running = list.items.filter((d: any) => d.status.phase === 'Ready').length;

await kumo.stop();
await server.stop();

console.log(
  `\nKumo create → Ready benchmark — ${availableParallelism()} cores (${cpus()[0]?.model}), Node ${process.version}\n`,
);
console.log('| measurement | n | p50 ms | p99 ms |');
console.log('|---|---:|---:|---:|');
console.log(
  `| baseline: initdb + pg_ctl start -w + connect | ${baseline.length} | ${pct(baseline, 50).toFixed(0)} | ${pct(baseline, 99).toFixed(0)} |`,
);
console.log(
  `| Kumo: POST → Ready → connected (first, builds the template) | 1 | ${cold.toFixed(0)} | ${cold.toFixed(0)} |`,
);
console.log(
  `| Kumo: POST → Ready → connected | ${warm.length} | ${pct(warm, 50).toFixed(0)} | ${pct(warm, 99).toFixed(0)} |`,
);
console.log(
  `\nratio Kumo / raw (p50): ${(pct(warm, 50) / pct(baseline, 50)).toFixed(2)}  (p99: ${(pct(warm, 99) / pct(baseline, 99)).toFixed(2)})`,
);
console.log(`Kumo process RSS with ${running} databases running: ${(rssKb / 1024).toFixed(0)} MB`);
