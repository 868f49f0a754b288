// npm run bench:backup — a pgbench database (scale BENCH_SCALE, default 20) backed up by Kumo into
// the filesystem store and restored (verification: pg_restore into a scratch instance), waited for
// through the watch stream, against the
// raw way measured in the same run on the same server: pg_dump -Fc to a file, and pg_restore of
// that file into a fresh database of a fresh server.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmod, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import pg from 'pg';
import { listPostgresBinaries } from '../packages/server/src/store/postgres-binaries.js';
import { ensureServiceUser } from '../packages/server/src/system/service-user.js';
import { createTestDatabase, startTestPostgres } from '../packages/server/src/testing/test-postgres.js';
import { startKumoProcess } from './kumo-process.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
// The timed commands run asynchronously: a blocked event loop would break the API client's pooled sockets.
const run = promisify(execFile);
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const bin = listPostgresBinaries({ path: process.env.PATH ?? '' })[0]!;
const user = ensureServiceUser('kumo');
const as = user ? { uid: user.uid, gid: user.gid } : {};

const server = await startTestPostgres(process.env.PATH ?? '');
const kumo = await startKumoProcess(await createTestDatabase(server.connection), [
  '--db-ports',
  '25200-25249',
]);
await kumo.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'bench' }, spec: {} } });
await kumo.request('/v1/projects', {
  method: 'POST',
  json: { metadata: { name: 'bench' }, spec: { org: 'bench' } },
});
await kumo.request('/v1/projects/bench/databases', {
  method: 'POST',
  json: {
    metadata: { name: 'pgbench' },
    spec: {
      engine: 'postgres',
      version: String(bin.majorVersion),
      plan: 'medium',
      storageGB: 20,
      acl: [{ cidr: '127.0.0.1/32' }],
    },
  },
});
while ((await kumo.request('/v1/projects/bench/databases/pgbench')).status?.phase !== 'Ready')
  await sleep(50);
const creds = await kumo.request('/v1/projects/bench/databases/pgbench/credentials');
const env = { ...process.env, PGPASSWORD: creds.password };
const conn = ['-h', '127.0.0.1', '-p', String(creds.port), '-U', creds.username];
console.error(`pgbench -i -s ${SCALE} …`);
execFileSync(join(bin.binDir, 'pgbench'), ['-i', '-q', '-s', String(SCALE), ...conn, creds.database], {
  env,
  stdio: 'ignore',
});
const client = new pg.Client({ connectionString: creds.uri });
await client.connect();
const size = (await client.query('SELECT pg_database_size(current_database())::bigint AS n')).rows[0].n;
await client.end();

/** The raw way, as the same unprivileged user: pg_dump -Fc to a file; and the time to fsync it after. */
async function rawDump(file: string): Promise<{ dump: number; durable: number }> {
  const start = performance.now();
  await run(join(bin.binDir, 'pg_dump'), ['-Fc', '-f', file, ...conn, creds.database], { env, ...as });
  const dump = performance.now() - start;
  const handle = await open(file, 'r');
  await handle.sync();
  await handle.close();
  return { dump, durable: performance.now() - start };
}

/** The raw way: pg_restore into a fresh database of a fresh server (initdb not timed). */
async function rawRestore(file: string, dir: string, port: number): Promise<number> {
  const data = join(dir, `data-${port}`);
  await run(
    join(bin.binDir, 'initdb'),
    ['-D', data, '-U', 'admin', '--auth=trust', '-E', 'UTF8', '--locale', 'C', '--no-instructions'],
    { ...as, cwd: dir },
  );
  await run(
    join(bin.binDir, 'pg_ctl'),
    [
      '-D',
      data,
      '-l',
      join(dir, `log-${port}`),
      '-w',
      '-s',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=''`,
      'start',
    ],
    { ...as, cwd: dir },
  );
  try {
    const start = performance.now();
    await run(
      join(bin.binDir, 'pg_restore'),
      [
        '--no-owner',
        '--no-privileges',
        '--single-transaction',
        '--exit-on-error',
        '-h',
        dir,
        '-p',
        String(port),
        '-U',
        'admin',
        '-d',
        'postgres',
        file,
      ],
      { ...as },
    );
    return performance.now() - start;
  } finally {
    execFileSync(join(bin.binDir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-s', 'stop'], {
      ...as,
      cwd: dir,
      stdio: 'ignore',
    });
  }
}

/**
 * Follows the watch stream of the backups from resourceVersion until `done` says so: no polling,
 * which would load the Kumo process and its store while the dump runs.
 */
async function until(rv: string, done: (b: any) => boolean): Promise<any> {
  const res = await fetch(`${kumo.url}/v1/projects/bench/backups?watch=true&resourceVersion=${rv}`, {
    headers: { authorization: `Bearer ${kumo.token}`, accept: 'text/event-stream' },
  });
  let found: any;
  const parser = createParser({
    onEvent: (e) => {
      const b = JSON.parse(e.data);
      if (!found && done(b)) found = b;
    },
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  while (!found) {
    const { value, done: ended } = await reader.read();
    if (ended) throw new Error('the watch ended');
    parser.feed(decoder.decode(value, { stream: true }));
  }
  await reader.cancel();
  return found;
}

/** Where a Kumo backup's time went: before the agent started it, the agent's work, and reporting it. */
const phases = { queued: [] as number[], working: [] as number[], reported: [] as number[] };

async function kumoBackup(name: string): Promise<{ wall: number; sizeBytes: number }> {
  const start = performance.now();
  const startedWall = Date.now();
  const created = await kumo.request('/v1/projects/bench/backups', {
    method: 'POST',
    json: { metadata: { name }, spec: { database: 'pgbench' } },
  });
  const b = await until(
    created.metadata.resourceVersion,
    (x) => x.metadata.name === name && ['Succeeded', 'Failed'].includes(x.status?.phase),
  );
  if (b.status.phase === 'Failed') throw new Error(`backup failed: ${JSON.stringify(b.status)}`);
  const [began, ended] = [Date.parse(b.status.startedAt), Date.parse(b.status.completedAt)];
  phases.queued.push(began - startedWall);
  phases.working.push(ended - began);
  phases.reported.push(Date.now() - ended);
  return { wall: performance.now() - start, sizeBytes: b.status.object.size };
}

async function kumoRestore(name: string): Promise<number> {
  const requested = await kumo.request(`/v1/projects/bench/backups/${name}/verify`, { method: 'POST' });
  const at = requested.spec.verifyRequestedAt;
  const b = await until(
    requested.metadata.resourceVersion,
    (x) =>
      x.metadata.name === name &&
      x.status?.verification?.requestedAt === at &&
      x.status.verification.state !== 'Running',
  );
  const v = b.status.verification;
  if (v.state !== 'Passed') throw new Error(`verification failed: ${v.message}`);
  return v.restoreDurationMs;
}

const dir = await mkdtemp(join(tmpdir(), 'kumo-bench-backup-'));
await chmod(dir, 0o777);
const raw = { dump: [] as number[], durable: [] as number[], restore: [] as number[] };
const ours = { backup: [] as number[], restore: [] as number[] };
let dumpBytes = 0;
let kumoBytes = 0;
/**
 * Before each timed step: the previous step's dirty pages are written out first (`sync`), so one
 * step's writeback does not slow the next one down.
 */
const settled = async <T>(step: () => Promise<T>): Promise<T> => {
  await run('sync', []);
  return step();
};
// A failed run stops Kumo and its servers too, rather than leaving them running.
try {
  // One untimed round first: the first run of each side pays once-only costs (the page cache, Kumo's
  // first look-up of pg_dump's version, code not yet compiled) that are not part of the overhead.
  await rawDump(join(dir, 'warm-up.dump'));
  await kumoBackup('warm-up');
  phases.queued.length = phases.working.length = phases.reported.length = 0;
  for (let i = 0; i < RUNS; i++) {
    // Raw first in even runs, Kumo first in odd ones: whatever the position costs (a warmer cache,
    // leftover work of the step before) falls on both sides equally.
    const file = join(dir, `raw-${i}.dump`);
    const rawFirst = i % 2 === 0;
    const pair = async (a: () => Promise<void>, b: () => Promise<void>) =>
      rawFirst ? (await settled(a), await settled(b)) : (await settled(b), await settled(a));
    await pair(
      async () => {
        const dumped = await rawDump(file);
        raw.dump.push(dumped.dump);
        raw.durable.push(dumped.durable);
        dumpBytes = (await stat(file)).size;
      },
      async () => {
        const backup = await kumoBackup(`run-${i}`);
        ours.backup.push(backup.wall);
        kumoBytes = backup.sizeBytes;
      },
    );
    await pair(
      async () => void raw.restore.push(await rawRestore(file, dir, 25300 + i)),
      async () => void ours.restore.push(await kumoRestore(`run-${i}`)),
    );
  }
} finally {
  await kumo.stop();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}

const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
console.log(
  `\nKumo backup benchmark — pgbench scale ${SCALE} (database ${mb(Number(size))} MB, dump ${mb(dumpBytes)} MB; Kumo's ${mb(kumoBytes)} MB), ${RUNS} runs, ${availableParallelism()} cores (${cpus()[0]?.model}), Node ${process.version}\n`,
);
console.log('| measurement | median ms | runs ms |');
console.log('|---|---:|---|');
const row = (label: string, xs: number[]) =>
  console.log(`| ${label} | ${median(xs).toFixed(0)} | ${xs.map((x) => x.toFixed(0)).join(', ')} |`);
row('raw: pg_dump -Fc to a file', raw.dump);
row('raw: pg_dump -Fc to a file, then fsync (Kumo syncs every object it stores)', raw.durable);
row('Kumo: POST backup → Succeeded (dump + table facts + upload + read-back check + manifest)', ours.backup);
row('  of which: POST → the agent starts', phases.queued);
row('  of which: the agent dumps, uploads and checks', phases.working);
row('  of which: Succeeded written and seen on the watch stream', phases.reported);
row('raw: pg_restore into a fresh server', raw.restore);
row('Kumo: pg_restore into a scratch instance (verification, as measured by Kumo)', ours.restore);
// Each run measures raw and Kumo back to back, so the median of the per-run ratios cancels most of a
// shared machine's drift between runs; the ratio of the medians is printed too.
const paired = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!)).toFixed(2);
console.log(
  `\nratio Kumo / raw, backup: ${(median(ours.backup) / median(raw.dump)).toFixed(2)} (to a synced file: ${(median(ours.backup) / median(raw.durable)).toFixed(2)}; per run: ${paired(ours.backup, raw.durable)})   restore: ${(median(ours.restore) / median(raw.restore)).toFixed(2)} (per run: ${paired(ours.restore, raw.restore)})`,
);
