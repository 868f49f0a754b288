// npm run bench:cli — how long the `kumo` command takes, start to exit, for `kumo --help`,
// `kumo version` (logged in: it asks the server too) and `kumo db list` against a local Kumo with
// BENCH_DATABASES (20) databases, each run BENCH_N (30) times, against `node -e 0` measured the
// same way in the same run (Node's own start-up, the floor any Node CLI stands on). The runs of the
// four are interleaved so that a busy moment of the machine hits them alike. Every run's exit code
// and output are checked and every run is bounded: a wrong answer ends the benchmark with exit 1.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, startTestPostgres } from '../packages/server/src/testing/test-postgres.js';
import { machine, percentile } from './support/bench-kit.js';
import { startKumoProcess } from './kumo-process.js';

const N = Number(process.env.BENCH_N ?? 30);
const DATABASES = Number(process.env.BENCH_DATABASES ?? 20);
const KUMO = join(import.meta.dirname, '../packages/cli/bin/kumo.js');

// The benchmark measures the built command, as users run it.
execFileSync(process.execPath, [join(import.meta.dirname, '../packages/cli/build.mjs')], {
  stdio: 'inherit',
});

const server = await startTestPostgres(process.env.PATH ?? '');
const kumo = await startKumoProcess(await createTestDatabase(server.connection), [
  '--default-quotas',
  'databases=1000',
]);
const home = await mkdtemp(join(tmpdir(), 'kumo-bench-cli-'));
let failed = false;
try {
  await kumo.ok('/v1/orgs', { method: 'POST', json: { metadata: { name: 'acme' }, spec: {} } });
  await kumo.ok('/v1/projects', {
    method: 'POST',
    json: { metadata: { name: 'shop' }, spec: { org: 'acme' } },
  });
  // Listed, not run: the list's cost is the same whether they run or not.
  for (let i = 0; i < DATABASES; i++) {
    await kumo.ok('/v1/projects/shop/databases', {
      method: 'POST',
      json: {
        metadata: { name: `db-${i}` },
        spec: { engine: 'redis', version: '7', plan: 'small', stopped: true },
      },
    });
  }
  const env = { PATH: process.env.PATH!, HOME: home, KUMO_CONFIG: join(home, 'config.json') };
  const login = spawnSync(
    process.execPath,
    [KUMO, 'login', '--url', kumo.url, '--token', kumo.token, '--default-project', 'shop'],
    { env, encoding: 'utf8', timeout: 30_000 },
  );
  if (login.status !== 0) throw new Error(`kumo login failed: ${login.stderr}`);

  const cases: Array<{ name: string; argv: string[]; check: (stdout: string) => boolean }> = [
    { name: 'node -e 0', argv: ['-e', '0'], check: (out) => out === '' },
    { name: 'kumo --help', argv: [KUMO, '--help'], check: (out) => out.startsWith('Usage: kumo ') },
    {
      name: 'kumo version',
      argv: [KUMO, 'version'],
      check: (out) => /^Client: \S+\nServer: \S+ at http/.test(out),
    },
    {
      name: `kumo db list (${DATABASES})`,
      argv: [KUMO, 'db', 'list'],
      check: (out) => out.startsWith('NAME') && out.trim().split('\n').length === DATABASES + 1,
    },
  ];
  const times = new Map(cases.map((c) => [c.name, [] as number[]]));
  for (let round = 0; round < N + 1; round++) {
    for (const c of cases) {
      const started = process.hrtime.bigint();
      const run = spawnSync(process.execPath, c.argv, { env, encoding: 'utf8', timeout: 30_000 });
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (run.status !== 0 || !c.check(run.stdout))
        throw new Error(
          `${c.name}: exit ${run.status}, stdout ${JSON.stringify(run.stdout.slice(0, 300))}, stderr ${run.stderr}`,
        );
      if (round > 0) times.get(c.name)!.push(ms); // the first round warms the file cache
    }
  }
  const floor = percentile(times.get('node -e 0')!, 50);
  console.log(`\n${machine()}; ${N} runs each, interleaved\n`);
  console.log('command                 median ms   p90 ms   median vs node -e 0');
  for (const c of cases) {
    const xs = times.get(c.name)!;
    const median = percentile(xs, 50);
    console.log(
      `${c.name.padEnd(24)}${median.toFixed(0).padStart(9)}${percentile(xs, 90).toFixed(0).padStart(9)}` +
        `${(median / floor).toFixed(2).padStart(12)}x  (+${(median - floor).toFixed(0)} ms)`,
    );
  }
} catch (err) {
  console.error(`bench:cli failed: ${(err as Error).message}`);
  failed = true;
} finally {
  await kumo.stop();
  await server.stop();
  await rm(home, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
