// npm run bench:api — latency of creates and updates at a fixed rate, and the maximum sustained
// create rate, against a Kumo on its own PostgreSQL. Baselines measured in the same run: a bare
// durable single-row INSERT on the same PostgreSQL (the floor of any acknowledged write) and an
// HTTP request that touches no store (the floor of the HTTP stack).
import { availableParallelism, cpus } from 'node:os';
import autocannon from 'autocannon';
import pg from 'pg';
import { createTestDatabase, startTestPostgres } from '../packages/server/src/testing/test-postgres.js';
import { startKumoProcess } from './kumo-process.js';

const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

interface Row {
  name: string;
  p50: number;
  p99: number;
  rps: number;
  errors: number;
}

async function cannon(name: string, options: autocannon.Options): Promise<Row> {
  const result = await autocannon({ duration: SECONDS, ...options });
  return {
    name,
    p50: result.latency.p50,
    p99: result.latency.p99,
    rps: result.requests.average,
    errors: result.non2xx + result.errors,
  };
}

async function rawInsert(connectionString: string, count: number): Promise<Row> {
  const pool = new pg.Pool({ connectionString, max: 1 });
  await pool.query('CREATE TABLE IF NOT EXISTS bench_raw (name text PRIMARY KEY, body jsonb)');
  const times: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await pool.query('INSERT INTO bench_raw VALUES ($1, $2)', [`raw-${i}`, { spec: {} }]);
    times.push(performance.now() - t0);
  }
  const elapsed = (performance.now() - started) / 1000;
  await pool.end();
  times.sort((a, b) => a - b);
  const pct = (p: number) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))]!;
  return {
    name: 'baseline: raw INSERT (1 connection, sequential)',
    p50: pct(50),
    p99: pct(99),
    rps: count / elapsed,
    errors: 0,
  };
}

const server = await startTestPostgres(process.env.PATH ?? '');
const storeUrl = await createTestDatabase(server.connection);
const kumo = await startKumoProcess(storeUrl);
const headers = { authorization: `Bearer ${kumo.token}`, 'content-type': 'application/json' };
let n = 0;
const createRequest = (prefix: string) => ({
  method: 'POST' as const,
  path: '/v1/orgs',
  headers,
  setupRequest: (req: autocannon.Request) => ({
    ...req,
    body: JSON.stringify({ metadata: { name: `${prefix}-${n++}` }, spec: {} }),
  }),
});

const rows: Row[] = [];
rows.push(await rawInsert(storeUrl, RATE * SECONDS));
rows.push(
  await cannon(`baseline: GET /livez (no store) at ${RATE}/s`, {
    url: `${kumo.url}/livez`,
    connections: 10,
    overallRate: RATE,
  }),
);
rows.push(
  await cannon(`create at ${RATE}/s`, {
    url: kumo.url,
    connections: 10,
    overallRate: RATE,
    requests: [createRequest('fixed')],
  }),
);

const created = n;
let u = 0;
rows.push(
  await cannon(`update (PATCH spec) at ${RATE}/s`, {
    url: kumo.url,
    connections: 10,
    overallRate: RATE,
    requests: [
      {
        method: 'PATCH',
        headers,
        setupRequest: (req: autocannon.Request) => {
          const i = u++;
          return {
            ...req,
            path: `/v1/orgs/fixed-${i % created}`,
            body: JSON.stringify({ spec: { displayName: `v${i}` } }),
          };
        },
      },
    ],
  }),
);
rows.push(
  await cannon('create, as fast as it goes (32 connections)', {
    url: kumo.url,
    connections: 32,
    requests: [createRequest('max')],
  }),
);

await kumo.stop();
await server.stop();

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(
  `\nKumo API benchmark — ${availableParallelism()} cores (${cpu}), Node ${process.version}, ${SECONDS}s per phase\n`,
);
console.log('| phase | p50 ms | p99 ms | req/s | errors |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows)
  console.log(
    `| ${r.name} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.rps.toFixed(0)} | ${r.errors} |`,
  );
const [raw, , create, update, max] = rows as [Row, Row, Row, Row, Row];
console.log(
  `\nratios: create p50 / raw INSERT p50 = ${(create.p50 / raw.p50).toFixed(2)}; update p50 / raw INSERT p50 = ${(update.p50 / raw.p50).toFixed(2)}`,
);
console.log(
  `max sustained create rate: ${max.rps.toFixed(0)}/s = ${(max.rps / raw.rps).toFixed(2)} × one sequential raw INSERT connection`,
);
