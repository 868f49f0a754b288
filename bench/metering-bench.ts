// npm run bench:metering — the usage ledger (docs/billing.md), on a PostgreSQL the benchmark
// starts, two migrated databases of it:
//
// 1. Ingest. BENCH_SAMPLES (200 000) final samples through UsageLedger.ingest in batches of 500,
//    one at a time, as an agent sends them: each batch one quarter-hour of
//    250 databases × 2 meters (database.runtime, database.storage) on target a. Then the same
//    batches a second time, all duplicates: the replay rate. Baseline, in the same run and batch
//    by batch interleaved with the first pass (order alternating): a plain multi-row INSERT … VALUES
//    of the same rows into a table with the same columns and no unique key, no index, no ON
//    CONFLICT — the floor of writing them at all.
// 2. A month's close. BENCH_RESOURCES databases in one org, each with every quarter-hour of a
//    30-day month (2040-04, UTC: 2 880) of both meters, loaded in SQL (INSERT … SELECT
//    generate_series, not through ingest); then costReport for the org over that month, as closing
//    it reads, BENCH_RUNS (3) times against the baseline `SELECT count(*), sum(quantity)` of the
//    org's rows in the month (the floor of reading them), alternating which goes first.
//
// Default BENCH_RESOURCES is 2 000 (11.5 M ledger rows, about 3 minutes in all), not 10 000
// (57.6 M rows, about 16 GiB with its indexes): on this 2-core machine 10 000 takes about 15–20 minutes —
// loading 9–13, each costReport over a minute — by linear extrapolation from runs of 200 and 500
// databases (2.9 M rows: loading 22 s, costReport 3.8 s, the baseline 0.5 s); more if the table no
// longer fits in the page cache. BENCH_RESOURCES=10000 runs it.
//
// Loading drops the ledger's unique key, its two secondary indexes and its foreign key, inserts,
// then adds them back from their own definitions (checked identical afterwards) and runs VACUUM
// ANALYZE, as a bulk load of a large table is done: maintaining a 57 M-entry unique index of random
// uuids row by row would make loading, not the month's close, most of the run. (Indexes built at
// once are packed a little tighter than ones grown row by row, which favours the reads slightly.)
//
// Every result is checked: each ingest's counts (500 accepted the first time, 500 duplicates the
// second, none rejected), the rows in each table afterwards, the baseline's count and sum, and the
// report: one resource per database, none with missing time, nothing unpriced, and every
// database's total the amount its month costs at the prices set (computed here from the price and
// the month's seconds). Every wait is bounded. A mismatch or a timeout ends the run with exit 1,
// after everything it started has been stopped.
import pg from 'pg';
import { billingPeriod, costReport } from '../packages/server/src/metering/cost-report.js';
import { INTERVAL_SECONDS, dimensionKey } from '../packages/server/src/metering/meters.js';
import { PriceBook } from '../packages/server/src/metering/price-book.js';
import { amountOf, parseUnitPrice } from '../packages/server/src/metering/pricing.js';
import { UsageLedger } from '../packages/server/src/metering/usage-ledger.js';
import type { UsageSample } from '../packages/server/src/metering/usage-recorder.js';
import { migrate } from '../packages/server/src/store/migrate.js';
import { createTestDatabase, startTestPostgres } from '../packages/server/src/testing/test-postgres.js';
import { Cleanup, machine, percentile, within } from './support/bench-kit.js';

function positive(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

/** Samples per report, as agents send them. */
const BATCH = 500;
/** Databases of the ingest phase: a batch is one quarter-hour of each, both meters. */
const INGEST_DATABASES = BATCH / 2;
const BATCHES = Math.max(1, Math.round(positive('BENCH_SAMPLES', 200_000) / BATCH));
const SAMPLES = BATCHES * BATCH;
/** Untimed batches first (of earlier quarter-hours): connections, plans and code warm up. */
const WARM_UP_BATCHES = 5;
const RESOURCES = positive('BENCH_RESOURCES', 2_000);
if (RESOURCES > 99_999)
  throw new Error('BENCH_RESOURCES must be at most 99 999 (databases are named db-00000…)');
const RUNS = positive('BENCH_RUNS', 3);
/** Databases loaded per INSERT … SELECT: one statement, one transaction, one bounded wait. */
const LOAD_CHUNK = 500;

const BATCH_TIMEOUT_MS = 60_000;
/** Any one statement of the load (a chunk, an index build, VACUUM), or one costReport. */
const STEP_TIMEOUT_MS = 30 * 60_000;

const RUNTIME = { engine: 'postgres', plan: 'small' };
const STORAGE = { engine: 'postgres' };
/** Prices of the month: 0.0137 EUR an hour of any plan, 0.10 EUR a GB-month. */
const PRICES = { runtime: '0.0137', storage: '0.10' } as const;
/** Database i's provisioned storage: they differ, so that a total cannot land on another's. */
const storageGB = (i: number) => 1 + (i % 50);
const dbName = (i: number) => `db-${String(i).padStart(5, '0')}`;

const cleanup = new Cleanup();
const startedAt = performance.now();

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`mismatch: ${what}`);
}

async function migratedStore(connection: Parameters<typeof createTestDatabase>[0]) {
  const pool = new pg.Pool({
    connectionString: await createTestDatabase(connection),
    max: 4,
    connectionTimeoutMillis: 10_000,
    statement_timeout: STEP_TIMEOUT_MS,
  });
  cleanup.defer('a store pool', () => pool.end());
  await within(60_000, 'migrate', migrate(pool));
  return pool;
}

/** Org `org`, its project `web`, and databases (spec.target a) named dbName(0…count-1); the trigger meters them. */
async function addTenant(pool: pg.Pool, org: string, count: number): Promise<void> {
  const row = `INSERT INTO resources (kind, project, name, uid, generation, resource_version, spec, created_at, updated_at)`;
  await pool.query(`${row} VALUES ('Org', '', $1, gen_random_uuid(), 1, 1, '{}', now(), now())`, [org]);
  await pool.query(`${row} VALUES ('Project', '', 'web', gen_random_uuid(), 1, 1, $1, now(), now())`, [
    { org },
  ]);
  await pool.query(
    `${row}
     SELECT 'Database', 'web', 'db-' || lpad(i::text, 5, '0'), gen_random_uuid(), 1, 1,
            jsonb_build_object('target', 'a', 'engine', 'postgres', 'plan', 'small', 'storageGB', 1 + i % 50),
            now(), now()
       FROM generate_series(0, $1::int - 1) AS i`,
    [count],
  );
}

async function uidsByName(pool: pg.Pool, org: string): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ uid: string; name: string }>(
    'SELECT uid, name FROM metered_resources WHERE org = $1',
    [org],
  );
  return new Map(rows.map((r) => [r.name, r.uid]));
}

// ---- 1. ingest ----

interface Pass {
  batchMs: number[];
}
const rate = (p: Pass) => SAMPLES / (p.batchMs.reduce((a, b) => a + b, 0) / 1000);

async function ingestPhase(pool: pg.Pool) {
  await addTenant(pool, 'acme', INGEST_DATABASES);
  const uids = await uidsByName(pool, 'acme');
  check(uids.size === INGEST_DATABASES, `${uids.size} of ${INGEST_DATABASES} ingest databases metered`);
  await pool.query(
    `CREATE TABLE usage_plain (
       id bigserial, target text NOT NULL, resource_uid uuid NOT NULL, org text NOT NULL,
       project text NOT NULL, meter text NOT NULL, dimensions jsonb NOT NULL, dimension_key text NOT NULL,
       interval_start timestamptz NOT NULL, seconds integer NOT NULL, quantity numeric(38,0) NOT NULL,
       final boolean NOT NULL, reported_at timestamptz NOT NULL DEFAULT now())`,
  );
  const first = Date.parse('2040-01-01T00:00:00Z') / 1000;
  /** Batch k: quarter-hour k (from 2040-01-01; negative k before it) of every database, final. */
  const batch = (k: number): UsageSample[] =>
    Array.from({ length: INGEST_DATABASES }, (_, i) => {
      const name = dbName(i);
      const base = { resourceUid: uids.get(name)!, kind: 'Database', project: 'web', name };
      const at = { intervalStart: first + k * INTERVAL_SECONDS, seconds: INTERVAL_SECONDS, final: true };
      return [
        {
          ...base,
          ...at,
          meter: 'database.runtime',
          dimensions: RUNTIME,
          quantity: String(INTERVAL_SECONDS),
        },
        {
          ...base,
          ...at,
          meter: 'database.storage',
          dimensions: STORAGE,
          quantity: String(storageGB(i) * INTERVAL_SECONDS),
        },
      ] satisfies UsageSample[];
    }).flat();

  const ledger = new UsageLedger(pool);
  const columns = 11;
  const plainSql = `INSERT INTO usage_plain
      (target, resource_uid, org, project, meter, dimensions, dimension_key, interval_start, seconds, quantity, final)
    VALUES ${Array.from(
      { length: BATCH },
      (_, r) => `(${Array.from({ length: columns }, (_, c) => `$${r * columns + c + 1}`).join(', ')})`,
    ).join(', ')}`;
  /** The baseline: the same rows (org and project known here), one statement, no key. */
  const plain = async (samples: UsageSample[]) => {
    const params = samples.flatMap((s) => [
      'a',
      s.resourceUid,
      'acme',
      s.project,
      s.meter,
      JSON.stringify(s.dimensions),
      dimensionKey(s.dimensions),
      new Date(s.intervalStart * 1000),
      s.seconds,
      s.quantity,
      s.final,
    ]);
    const result = await within(BATCH_TIMEOUT_MS, 'a plain INSERT of a batch', pool.query(plainSql, params));
    check(result.rowCount === samples.length, `plain INSERT wrote ${result.rowCount} of ${samples.length}`);
  };
  const ingest = async (samples: UsageSample[], expect: 'accepted' | 'duplicates', k: number) => {
    const result = await within(BATCH_TIMEOUT_MS, `ingest of batch ${k}`, ledger.ingest('a', samples));
    const want = expect === 'accepted' ? [samples.length, 0] : [0, samples.length];
    check(
      result.accepted === want[0] && result.duplicates === want[1] && result.rejected.length === 0,
      `batch ${k} (${expect === 'accepted' ? 'first time' : 'replay'}): accepted ${result.accepted}, duplicates ${result.duplicates}, rejected ${result.rejected.length}; expected accepted ${want[0]}, duplicates ${want[1]}`,
    );
  };
  const timed = async (step: () => Promise<void>, into: Pass) => {
    const t0 = performance.now();
    await step();
    into.batchMs.push(performance.now() - t0);
  };

  for (let w = -WARM_UP_BATCHES; w < 0; w++) {
    const samples = batch(w);
    await plain(samples);
    await ingest(samples, 'accepted', w);
  }
  const baseline: Pass = { batchMs: [] };
  const firstTime: Pass = { batchMs: [] };
  const replay: Pass = { batchMs: [] };
  console.error(`ingest: ${BATCHES} batches of ${BATCH}, interleaved with the plain INSERT …`);
  for (let k = 0; k < BATCHES; k++) {
    const samples = batch(k);
    const a = () => timed(() => plain(samples), baseline);
    const b = () => timed(() => ingest(samples, 'accepted', k), firstTime);
    if (k % 2 === 0) await a().then(b);
    else await b().then(a);
  }
  console.error('ingest: the same batches again …');
  for (let k = 0; k < BATCHES; k++) {
    const samples = batch(k);
    await timed(() => ingest(samples, 'duplicates', k), replay);
  }
  const { rows } = await pool.query<{ ledger: string; plain: string }>(
    'SELECT (SELECT count(*) FROM usage_ledger) AS ledger, (SELECT count(*) FROM usage_plain) AS plain',
  );
  const expected = SAMPLES + WARM_UP_BATCHES * BATCH;
  check(Number(rows[0]!.ledger) === expected, `usage_ledger holds ${rows[0]!.ledger} rows, not ${expected}`);
  check(Number(rows[0]!.plain) === expected, `usage_plain holds ${rows[0]!.plain} rows, not ${expected}`);
  return { baseline, firstTime, replay };
}

// ---- 2. a month's cost ----

const seconds = async <T>(what: string, step: () => Promise<T>): Promise<number> => {
  const t0 = performance.now();
  console.error(`load: ${what} …`);
  await within(STEP_TIMEOUT_MS, what, step());
  return (performance.now() - t0) / 1000;
};

/** The ledger's unique key, secondary indexes and foreign key, as statements that make them. */
async function ledgerKeys(pool: pg.Pool): Promise<{ drop: string[]; add: string[] }> {
  const { rows: constraints } = await pool.query<{ name: string; def: string }>(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE conrelid = 'usage_ledger'::regclass AND contype IN ('u', 'f') ORDER BY contype DESC, conname`,
  );
  const { rows: indexes } = await pool.query<{ name: string; def: string }>(
    `SELECT i.relname AS name, pg_get_indexdef(i.oid) AS def
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
      WHERE x.indrelid = 'usage_ledger'::regclass
        AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.oid)
      ORDER BY i.relname`,
  );
  return {
    drop: [
      ...constraints.map((c) => `ALTER TABLE usage_ledger DROP CONSTRAINT "${c.name}"`),
      ...indexes.map((i) => `DROP INDEX "${i.name}"`),
    ],
    // Unique key first, then the indexes, the foreign key last (its check reads the whole table).
    add: [
      ...constraints.map((c) => `ALTER TABLE usage_ledger ADD CONSTRAINT "${c.name}" ${c.def}`),
      ...indexes.map((i) => i.def),
    ].sort((x, y) => Number(x.includes('FOREIGN KEY')) - Number(y.includes('FOREIGN KEY'))),
  };
}

/** The ledger's indexes and constraints, as text to compare. */
async function schemaOf(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ def: string }>(
    `SELECT indexdef AS def FROM pg_indexes WHERE tablename = 'usage_ledger'
     UNION ALL
     SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'usage_ledger'::regclass
     ORDER BY 1`,
  );
  return rows.map((r) => r.def).join('; ');
}

async function monthPhase(pool: pg.Pool) {
  const month = billingPeriod('UTC', 0, '2040-04');
  const quarterHours = (month.to - month.from) / INTERVAL_SECONDS;
  check(quarterHours === 2880, `2040-04 has ${quarterHours} quarter-hours`);
  const prices = new PriceBook(pool);
  const eur = (text: string) => parseUnitPrice(text, 'EUR')!;
  for (const [meter, text] of [
    ['database.runtime', PRICES.runtime],
    ['database.storage', PRICES.storage],
  ] as const)
    await prices.add({
      meter,
      plan: '',
      currency: 'EUR',
      unitPrice: eur(text),
      effectiveFrom: month.from,
      createdBy: 'bench',
    });

  const load = { resources: 0, insert: 0, keys: 0, vacuum: 0 };
  load.resources = await seconds(`${RESOURCES} databases`, () => addTenant(pool, 'bench', RESOURCES));
  const keys = await ledgerKeys(pool);
  const before = await schemaOf(pool);
  for (const sql of keys.drop) await pool.query(sql);
  const t0 = performance.now();
  for (let lo = 0; lo < RESOURCES; lo += LOAD_CHUNK) {
    const hi = Math.min(RESOURCES, lo + LOAD_CHUNK);
    await seconds(`ledger rows of databases ${lo}–${hi - 1} of ${RESOURCES}`, () =>
      pool.query(
        `INSERT INTO usage_ledger
           (target, resource_uid, org, project, meter, dimensions, dimension_key, interval_start, seconds, quantity, final)
         SELECT m.target, m.uid, m.org, m.project, x.meter, x.dimensions, x.dimension_key,
                to_timestamp($1::bigint + q * 900), 900, 900 * x.per_second, true
           FROM metered_resources m
           JOIN resources r ON r.uid = m.uid
           CROSS JOIN LATERAL (VALUES
             ('database.runtime', $4::jsonb, $5, 1),
             ('database.storage', $6::jsonb, $7, (r.spec->>'storageGB')::int)
           ) AS x(meter, dimensions, dimension_key, per_second)
           CROSS JOIN generate_series(0, $2::int - 1) AS q
          WHERE m.org = 'bench' AND m.name >= $3 AND m.name < $8`,
        [
          month.from,
          quarterHours,
          dbName(lo),
          JSON.stringify(RUNTIME),
          dimensionKey(RUNTIME),
          JSON.stringify(STORAGE),
          dimensionKey(STORAGE),
          dbName(hi),
        ],
      ),
    );
  }
  load.insert = (performance.now() - t0) / 1000;
  const rows = 2 * quarterHours * RESOURCES;
  load.keys = await seconds('the unique key, indexes and foreign key, added back', async () => {
    const client = await pool.connect();
    try {
      await client.query("SET maintenance_work_mem = '512MB'");
      for (const sql of keys.add) await client.query(sql);
    } finally {
      client.release();
    }
  });
  const after = await schemaOf(pool);
  check(after === before, `the ledger's keys differ after the load: ${before} became ${after}`);
  load.vacuum = await seconds('VACUUM ANALYZE', () => pool.query('VACUUM (ANALYZE) usage_ledger'));
  const { rows: size } = await pool.query<{ bytes: string }>(
    "SELECT pg_total_relation_size('usage_ledger') AS bytes",
  );

  // What each database's month costs, computed from the prices and its seconds.
  const monthSeconds = BigInt(month.to - month.from);
  const expectedOf = (i: number) =>
    Number(
      amountOf('database.runtime', monthSeconds, eur(PRICES.runtime)) +
        amountOf('database.storage', monthSeconds * BigInt(storageGB(i)), eur(PRICES.storage)),
    );
  const expected = new Map(Array.from({ length: RESOURCES }, (_, i) => [dbName(i), expectedOf(i)]));
  const expectedTotal = [...expected.values()].reduce((a, b) => a + b, 0);
  let gbSum = 0n;
  for (let i = 0; i < RESOURCES; i++) gbSum += BigInt(storageGB(i));
  const expectedQuantity = monthSeconds * (BigInt(RESOURCES) + gbSum);

  const deps = { pool, ledger: new UsageLedger(pool), prices };
  const floor = async () => {
    const { rows: r } = await pool.query<{ n: string; q: string }>(
      `SELECT count(*) AS n, sum(quantity) AS q FROM usage_ledger
        WHERE org = $1 AND interval_start >= to_timestamp($2) AND interval_start < to_timestamp($3)`,
      ['bench', month.from, month.to],
    );
    check(Number(r[0]!.n) === rows, `the baseline counted ${r[0]!.n} rows, not ${rows}`);
    check(BigInt(r[0]!.q) === expectedQuantity, `the baseline summed ${r[0]!.q}, not ${expectedQuantity}`);
  };
  const report = async () => {
    const r = await costReport(deps, { org: 'bench' }, month, month.to, { days: false });
    check(
      r.resources.length === RESOURCES,
      `the report has ${r.resources.length} resources, not ${RESOURCES}`,
    );
    check(r.unpriced.length === 0, `unpriced meters: ${JSON.stringify(r.unpriced)}`);
    for (const db of r.resources) {
      check(db.total === expected.get(db.name), `${db.name} costs ${db.total}, not ${expected.get(db.name)}`);
      check(db.coverage.missingSeconds === 0, `${db.name} has ${db.coverage.missingSeconds} s missing`);
    }
    check(r.total === expectedTotal, `the report's total is ${r.total}, not ${expectedTotal}`);
  };
  const times = { floor: [] as number[], report: [] as number[] };
  const timed = async (what: string, step: () => Promise<void>, into: number[]) => {
    const t = performance.now();
    await within(STEP_TIMEOUT_MS, what, step());
    into.push(performance.now() - t);
  };
  for (let run = 0; run < RUNS; run++) {
    console.error(`month: run ${run + 1} of ${RUNS} …`);
    const a = () => timed('the baseline count and sum', floor, times.floor);
    const b = () => timed('costReport', report, times.report);
    if (run % 2 === 0) await a().then(b);
    else await b().then(a);
  }
  return { rows, load, bytes: Number(size[0]!.bytes), times, perDatabase: expectedOf(0) };
}

let results:
  | { ingest: Awaited<ReturnType<typeof ingestPhase>>; month: Awaited<ReturnType<typeof monthPhase>> }
  | undefined;
try {
  const server = await within(120_000, 'the test PostgreSQL', startTestPostgres(process.env.PATH ?? ''));
  cleanup.defer('the test PostgreSQL', () => server.stop());
  const ingest = await ingestPhase(await migratedStore(server.connection));
  const month = await monthPhase(await migratedStore(server.connection));
  results = { ingest, month };
} catch (err) {
  console.error(`bench:metering failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await cleanup.run();
}

if (results) {
  const { ingest, month } = results;
  const median = (xs: number[]) => percentile(xs, 50);
  console.log(
    `\nKumo metering benchmark — ${machine()}; ${SAMPLES} samples in batches of ${BATCH}; ` +
      `${RESOURCES} databases × 2 meters × 2880 quarter-hours; ${RUNS} runs; ` +
      `${((performance.now() - startedAt) / 1000).toFixed(0)} s in all\n`,
  );
  console.log(
    '| ingest (one connection, batch after batch) | samples | samples/s | batch p50 ms | batch p99 ms |',
  );
  console.log('|---|---:|---:|---:|---:|');
  const ingestRow = (label: string, p: Pass) =>
    console.log(
      `| ${label} | ${SAMPLES} | ${rate(p).toFixed(0)} | ${median(p.batchMs).toFixed(2)} | ${percentile(p.batchMs, 99).toFixed(2)} |`,
    );
  ingestRow('baseline: plain multi-row INSERT (no unique key, no ON CONFLICT)', ingest.baseline);
  ingestRow('UsageLedger.ingest, first time (all accepted)', ingest.firstTime);
  ingestRow('UsageLedger.ingest, replay (all duplicates)', ingest.replay);
  console.log(
    `\nratios to the plain INSERT (samples/s): ingest ${(rate(ingest.firstTime) / rate(ingest.baseline)).toFixed(2)}, replay ${(rate(ingest.replay) / rate(ingest.baseline)).toFixed(2)}`,
  );

  const { load } = month;
  const loaded = load.resources + load.insert + load.keys + load.vacuum;
  console.log(
    `\nloaded ${month.rows} ledger rows in ${loaded.toFixed(0)} s: databases ${load.resources.toFixed(1)} s, ` +
      `INSERT … SELECT generate_series ${load.insert.toFixed(0)} s (${(month.rows / load.insert).toFixed(0)} rows/s), ` +
      `unique key + indexes + foreign key ${load.keys.toFixed(0)} s, VACUUM ANALYZE ${load.vacuum.toFixed(0)} s; ` +
      `usage_ledger with its indexes ${(month.bytes / 1024 ** 3).toFixed(2)} GiB\n`,
  );
  console.log('| a month of the org (2040-04) | rows | median ms | rows/s | runs ms |');
  console.log('|---|---:|---:|---:|---|');
  const monthRow = (label: string, xs: number[]) =>
    console.log(
      `| ${label} | ${month.rows} | ${median(xs).toFixed(0)} | ${(month.rows / (median(xs) / 1000)).toFixed(0)} | ${xs.map((x) => x.toFixed(0)).join(', ')} |`,
    );
  monthRow('baseline: SELECT count(*), sum(quantity) of the org’s month', month.times.floor);
  monthRow(`costReport for the org (${RESOURCES} resources, each checked)`, month.times.report);
  console.log(
    `\nratio costReport / baseline (median): ${(median(month.times.report) / median(month.times.floor)).toFixed(2)}; ` +
      `a database running the whole month costs ${month.perDatabase} cents at these prices (1 GB; checked for each)`,
  );
}
