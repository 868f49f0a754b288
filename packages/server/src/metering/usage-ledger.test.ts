import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { migrate } from '../store/migrate.js';
import { createTestDatabase } from '../testing/test-postgres.js';
import { type CostReport, type ResourceCost, billingPeriod, costReport } from './cost-report.js';
import { INTERVAL_SECONDS, type MeterName, intervalOf } from './meters.js';
import { PriceBook } from './price-book.js';
import { amountOf, parseUnitPrice } from './pricing.js';
import { UsageLedger } from './usage-ledger.js';
import { type MeteredSubject, type UsageSample, UsageRecorder } from './usage-recorder.js';
import { backupRates } from './backup-usage.js';
import { type DatabaseState, databaseRates } from './database-usage.js';

// Prices cannot take effect in the past, so every scripted month lies in the future (2040).
const t = (iso: string) => Date.parse(iso) / 1000;
const HOUR = 3600;

const pools: pg.Pool[] = [];
afterAll(() => Promise.all(pools.map((p) => p.end())));

/** A migrated store of its own, so that each scenario has its own price book. */
async function freshStore() {
  const pool = new pg.Pool({ connectionString: await createTestDatabase(inject('pg')) });
  pools.push(pool);
  await migrate(pool);
  return { pool, ledger: new UsageLedger(pool), prices: new PriceBook(pool) };
}
type Store = Awaited<ReturnType<typeof freshStore>>;

/** A row of `resources` as the resource store writes it; createdAt defaults to the store's clock. */
async function addRow(
  pool: pg.Pool,
  row: { kind: string; project?: string; name: string; spec: object; uid?: string; createdAt?: number },
): Promise<string> {
  const uid = row.uid ?? randomUUID();
  await pool.query(
    `INSERT INTO resources (kind, project, name, uid, generation, resource_version, spec, created_at, updated_at)
     VALUES ($1, $2, $3, $4, 1, 1, $5, coalesce(to_timestamp($6), now()), now())`,
    [row.kind, row.project ?? '', row.name, uid, row.spec, row.createdAt ?? null],
  );
  return uid;
}

/** Org `org` (with orgSpec, e.g. its timeZone) and its project `web`. */
async function addTenant(pool: pg.Pool, org: string, orgSpec: object = {}): Promise<void> {
  await addRow(pool, { kind: 'Org', name: org, spec: orgSpec });
  await addRow(pool, { kind: 'Project', name: 'web', spec: { org } });
}

/** A database of project `web` (on target a, plan small, 10 GB unless said): the subject of samples. */
async function addDatabase(
  pool: pg.Pool,
  name: string,
  spec: { target?: string; plan?: string; storageGB?: number } = {},
  options: { uid?: string; createdAt?: number } = {},
): Promise<MeteredSubject> {
  const full = { target: 'a', engine: 'postgres', plan: 'small', storageGB: 10, ...spec };
  const uid = await addRow(pool, { kind: 'Database', project: 'web', name, spec: full, ...options });
  return { uid, kind: 'Database', project: 'web', name };
}

function running(plan: string, storageGB: number, on = true): DatabaseState {
  return { running: on, engine: 'postgres', plan, storageGB };
}
const stopped = (plan: string, storageGB: number) => running(plan, storageGB, false);

/** A sample as an agent sends it: `seconds` of db's quarter-hour at `start` (plan small, 10 GB). */
function sampleOf(
  db: MeteredSubject,
  meter: 'database.runtime' | 'database.storage',
  start: number,
  seconds: number,
  final: boolean,
): UsageSample {
  const runtime = meter === 'database.runtime';
  const { uid: resourceUid, kind, project, name } = db;
  const dimensions: Record<string, string> = runtime
    ? { engine: 'postgres', plan: 'small' }
    : { engine: 'postgres' };
  const quantity = String(runtime ? seconds : 10 * seconds);
  return {
    resourceUid,
    kind,
    project,
    name,
    meter,
    dimensions,
    intervalStart: start,
    seconds,
    quantity,
    final,
  };
}

/**
 * Removes a resource's row, as the resource store does when its deletion finishes. The trigger
 * stamps deleted_at with the store's clock; a scripted (future) timeline moves it to its own moment.
 */
async function removeRow(pool: pg.Pool, uid: string, at?: number): Promise<void> {
  await pool.query('DELETE FROM resources WHERE uid = $1', [uid]);
  if (at !== undefined)
    await pool.query('UPDATE metered_resources SET deleted_at = to_timestamp($2) WHERE uid = $1', [uid, at]);
}

const eur = (text: string) => parseUnitPrice(text, 'EUR')!;
/** What quantity of meter costs at a price in EUR ("0.0137"), in cents, as a report line says. */
const costOf = (meter: MeterName, quantity: number | bigint, price: string) =>
  Number(amountOf(meter, BigInt(quantity), eur(price)));

async function addPrice(prices: PriceBook, meter: MeterName, plan: string, price: string, from: number) {
  await prices.add({
    meter,
    plan,
    currency: 'EUR',
    unitPrice: eur(price),
    effectiveFrom: from,
    createdBy: 'test',
  });
}

/** What happens to a database at a moment: the state it is seen in from then on, or its deletion. */
interface Change {
  at: number;
  db: MeteredSubject;
  state: DatabaseState | 'deleted';
}

/**
 * What an agent reports over [from, to] for a scripted timeline, report by report: its recorder
 * sees each change as it happens, and every `every` seconds it cuts and sends the final samples and
 * the quarter-hours still running, then forgets the acknowledged ones (as UsageReporter does).
 */
function reportsOf(changes: readonly Change[], from: number, to: number, every = 50 * 60): UsageSample[][] {
  const recorder = new UsageRecorder();
  const queue = [...changes].sort((a, b) => a.at - b.at);
  const reports: UsageSample[][] = [];
  for (let cut = Math.min(from + every, to); ; cut = Math.min(cut + every, to)) {
    while (queue[0] && queue[0].at <= cut) {
      const { at, db, state } = queue.shift()!;
      if (state === 'deleted') recorder.ended(db.uid, at);
      else recorder.observe(db, databaseRates(state), at);
    }
    recorder.cut(cut);
    const final = [...recorder.pending()];
    reports.push([...final, ...recorder.running()]);
    recorder.acknowledged(final);
    if (cut === to) return reports;
  }
}

/** Ingests each report in turn, checking that every one's counts add up; returns the sums. */
async function ingestAll(ledger: UsageLedger, target: string, reports: readonly UsageSample[][]) {
  const sum = { accepted: 0, duplicates: 0 };
  for (const report of reports) {
    const result = await ledger.ingest(target, report);
    expect(result.rejected).toEqual([]);
    expect(result.accepted + result.duplicates).toBe(report.length);
    sum.accepted += result.accepted;
    sum.duplicates += result.duplicates;
  }
  return sum;
}

const resource = (report: CostReport, name: string): ResourceCost =>
  report.resources.find((r) => r.name === name)!;
const secondsOf = (r: ResourceCost, meter: MeterName) =>
  r.lines.filter((l) => l.meter === meter).reduce((sum, l) => sum + l.seconds, 0);

describe('usage is counted once', () => {
  const jan = billingPeriod('UTC', 0, '2040-01');
  const orders = { uid: randomUUID(), kind: 'Database', project: 'web', name: 'orders' };
  const users = { uid: randomUUID(), kind: 'Database', project: 'web', name: 'users' };
  const cache = { uid: randomUUID(), kind: 'Database', project: 'web', name: 'cache' };
  const usersCreated = t('2040-01-05T09:13:10Z');
  const usersStopped = t('2040-01-12T18:00:40Z');
  const usersStarted = t('2040-01-13T08:30:05Z');
  const usersDeleted = t('2040-01-25T16:42:17Z');
  const timeline: Change[] = [
    { at: jan.from, db: orders, state: running('small', 10) },
    { at: t('2040-01-10T14:07:23Z'), db: orders, state: running('large', 20) },
    { at: jan.from, db: cache, state: running('medium', 1) },
    { at: usersCreated, db: users, state: running('small', 5) },
    { at: usersStopped, db: users, state: stopped('small', 5) },
    { at: usersStarted, db: users, state: running('small', 5) },
    { at: usersDeleted, db: users, state: 'deleted' },
  ];
  const reports = reportsOf(timeline, jan.from, jan.to);

  /** The tenant, its databases (with the same uids in every store) and the price book. */
  async function seeded(): Promise<Store> {
    const store = await freshStore();
    await addTenant(store.pool, 'acme');
    await addDatabase(store.pool, 'orders', { plan: 'large', storageGB: 20 }, orders);
    await addDatabase(store.pool, 'users', { storageGB: 5 }, { ...users, createdAt: usersCreated });
    await addDatabase(store.pool, 'cache', { plan: 'medium', storageGB: 1 }, cache);
    await addPrice(store.prices, 'database.runtime', '', '0.0137', jan.from);
    await addPrice(store.prices, 'database.runtime', 'large', '0.05', jan.from);
    await addPrice(store.prices, 'database.storage', '', '0.10', jan.from);
    return store;
  }
  const report = (store: Store) => costReport(store, { org: 'acme' }, jan, jan.to);

  it('bills a month of reports the same however often and in whatever order they arrive', async () => {
    const once = await seeded();
    const samples = reports.flat();
    expect(await ingestAll(once.ledger, 'a', reports)).toEqual({
      accepted: samples.length,
      duplicates: 0,
    });
    await removeRow(once.pool, users.uid, usersDeleted);
    const billed = await report(once);

    const usersCost = resource(billed, 'users');
    expect(usersCost.deleted).toBe(true);
    expect(secondsOf(usersCost, 'database.runtime')).toBe(
      usersStopped - usersCreated + (usersDeleted - usersStarted),
    );
    expect(billed.resources.map((r) => [r.name, r.coverage.missingSeconds])).toEqual([
      ['cache', 0],
      ['orders', 0],
      ['users', 0],
    ]);
    expect(billed.total).toBeGreaterThan(0);

    const final = samples.filter((s) => s.final);
    expect(await once.ledger.ingest('a', final)).toEqual({
      accepted: 0,
      duplicates: final.length,
      rejected: [],
    });
    expect(await report(once)).toEqual(billed);

    const replayed = await seeded();
    const twice = [...reports, ...reports];
    const [shuffled] = fc.sample(fc.shuffledSubarray(twice, { minLength: twice.length }), {
      seed: 17,
      numRuns: 1,
    });
    expect(shuffled).not.toEqual(twice);
    const sums = await ingestAll(replayed.ledger, 'a', shuffled!);
    expect(sums.accepted + sums.duplicates).toBe(2 * samples.length);
    await removeRow(replayed.pool, users.uid, usersDeleted);
    expect(await report(replayed)).toEqual(billed);
  });
});

describe('a quarter-hour grows while open and is frozen once final', () => {
  it('keeps the largest open sample and nothing after the final one', async () => {
    const { pool, ledger } = await freshStore();
    await addTenant(pool, 'acme');
    const db = await addDatabase(pool, 'orders');
    const start = t('2040-01-10T12:00:00Z');
    const steps: Array<[reason: string, seconds: number, final: boolean, accepted: number, row: number]> = [
      ['a first open sample makes the row', 300, false, 1, 300],
      ['a larger open sample grows it', 600, false, 1, 600],
      ['a replay of an older, smaller one changes nothing', 300, false, 0, 600],
      ['the final one (deleted 700 s in) freezes it', 700, true, 1, 700],
      ['a later open one with more seconds changes nothing', 800, false, 0, 700],
      ['nor does a later final one', 850, true, 0, 700],
    ];
    for (const [reason, seconds, final, accepted, row] of steps) {
      const result = await ledger.ingest('a', [sampleOf(db, 'database.runtime', start, seconds, final)]);
      expect(result, reason).toEqual({ accepted, duplicates: 1 - accepted, rejected: [] });
      const [total] = await ledger.totals({ org: 'acme' }, [start, start + INTERVAL_SECONDS]);
      expect([total?.seconds, total?.quantity], reason).toEqual([row, BigInt(row)]);
    }
  });
});

describe('a target reports only its own resources', () => {
  const jan = billingPeriod('UTC', 0, '2040-01');
  const storage = (db: MeteredSubject, start: number, seconds: number, final = true) =>
    sampleOf(db, 'database.storage', start, seconds, final);

  it('rejects samples another target sends, naming the resource, and they cost nothing', async () => {
    const store = await freshStore();
    await addTenant(store.pool, 'acme');
    const metered = await addDatabase(store.pool, 'metered');
    const unmetered = await addDatabase(store.pool, 'unmetered');
    await addPrice(store.prices, 'database.storage', '', '0.10', jan.from);
    const hour = t('2040-01-10T12:00:00Z');
    expect(await store.ledger.ingest('a', [storage(metered, hour, 900)])).toMatchObject({
      accepted: 1,
    });
    const before = await costReport(store, { org: 'acme' }, jan, jan.to);

    const result = await store.ledger.ingest('b', [
      storage(metered, hour + 900, 900),
      storage(unmetered, hour, 900),
    ]);
    expect(result.accepted + result.duplicates).toBe(0);
    expect(result.rejected.map((r) => r.resourceUid).sort()).toEqual([metered.uid, unmetered.uid].sort());
    expect(await costReport(store, { org: 'acme' }, jan, jan.to)).toEqual(before);
  });

  it('takes late samples of a deleted resource from its own target, and stops its coverage at the deletion', async () => {
    // The trigger stamps deleted_at with the store's clock: this report is of the current month.
    const store = await freshStore();
    await addTenant(store.pool, 'acme');
    const { rows } = await store.pool.query<{ now: number }>(
      'SELECT extract(epoch FROM now())::float8 AS now',
    );
    const now = rows[0]!.now;
    const createdAt = Math.floor(now) - HOUR;
    const db = await addDatabase(store.pool, 'gone', {}, { createdAt });
    const interval = intervalOf(now);
    expect(await store.ledger.ingest('a', [storage(db, interval, 60, false)])).toMatchObject({
      accepted: 1,
    });

    await removeRow(store.pool, db.uid);
    expect(await store.ledger.ingest('a', [storage(db, interval, 120)])).toEqual({
      accepted: 1,
      duplicates: 0,
      rejected: [],
    });
    const { rows: marks } = await store.pool.query<{ deleted: number | null }>(
      'SELECT extract(epoch FROM deleted_at)::float8 AS deleted FROM metered_resources WHERE uid = $1',
      [db.uid],
    );
    const deletedAt = marks[0]!.deleted!;
    expect(deletedAt).toBeGreaterThanOrEqual(now);

    const period = billingPeriod('UTC', deletedAt);
    const gone = resource(await costReport(store, { org: 'acme' }, period, period.to), 'gone');
    expect(gone.deleted).toBe(true);
    expect(secondsOf(gone, 'database.storage')).toBe(120);
    const { expectedSeconds, observedSeconds, missingSeconds } = gone.coverage;
    expect(expectedSeconds).toBe(Math.round(deletedAt) - Math.max(createdAt, period.from));
    expect(observedSeconds + missingSeconds).toBe(expectedSeconds);
  });
});

describe('usage only within a resource’s life', () => {
  it('refuses quarter-hours long before its creation or after its deletion, naming why, and they cost nothing', async () => {
    const store = await freshStore();
    await addTenant(store.pool, 'acme');
    const created = t('2040-05-10T12:00:00Z');
    const db = await addDatabase(store.pool, 'orders', {}, { createdAt: created });
    await store.pool.query('UPDATE metered_resources SET created_at = to_timestamp($2) WHERE uid = $1', [
      db.uid,
      created,
    ]);
    await removeRow(store.pool, db.uid, t('2040-05-20T12:00:00Z'));
    const storage = (start: number) => sampleOf(db, 'database.storage', start, 900, true);

    const result = await store.ledger.ingest('a', [
      storage(t('2040-04-01T00:00:00Z')), // a month before it existed
      storage(t('2040-05-10T11:45:00Z')), // the quarter-hour before: a clock a little behind is let in
      storage(t('2040-05-15T00:00:00Z')),
      storage(t('2040-05-20T12:00:00Z')), // the quarter-hour it was deleted in
      storage(t('2040-06-01T00:00:00Z')), // long after
    ]);
    expect(result).toEqual({
      accepted: 3,
      duplicates: 0,
      rejected: [{ resourceUid: db.uid, reason: 'a quarter-hour outside the time the resource existed' }],
    });
    const april = await costReport(
      store,
      { org: 'acme' },
      billingPeriod('UTC', 0, '2040-04'),
      t('2040-05-01T00:00:00Z'),
    );
    expect(april.resources.flatMap((r) => r.lines)).toEqual([]);
    const june = await costReport(
      store,
      { org: 'acme' },
      billingPeriod('UTC', 0, '2040-06'),
      t('2040-07-01T00:00:00Z'),
    );
    expect(june.resources.flatMap((r) => r.lines)).toEqual([]);
  });
});

describe('a price change mid-month', () => {
  it('splits the lines at the change, prices each line by its own quantity, and prefers a plan’s own price', async () => {
    const store = await freshStore();
    await addTenant(store.pool, 'acme');
    const jan = billingPeriod('UTC', 0, '2040-01');
    const mid = t('2040-01-15T00:00:00Z');
    const steady = await addDatabase(store.pool, 'steady');
    const big = await addDatabase(store.pool, 'big', { plan: 'large' });
    await addPrice(store.prices, 'database.runtime', '', '0.0137', jan.from);
    await addPrice(store.prices, 'database.runtime', '', '0.02', mid);
    await addPrice(store.prices, 'database.runtime', 'large', '0.05', jan.from);
    const changes: Change[] = [
      { at: jan.from, db: steady, state: running('small', 10) },
      { at: jan.from, db: big, state: running('large', 10) },
    ];
    await ingestAll(store.ledger, 'a', reportsOf(changes, jan.from, jan.to, 24 * HOUR));
    const report = await costReport(store, { org: 'acme' }, jan, jan.to);

    const runtime = (name: string) =>
      resource(report, name)
        .lines.filter((l) => l.meter === 'database.runtime')
        .map((l) => [l.from, l.to, l.seconds, l.unitPrice]);
    const halves = (first: string, second: string) => [
      ['2040-01-01T00:00:00.000Z', '2040-01-15T00:00:00.000Z', 14 * 24 * HOUR, first],
      ['2040-01-15T00:00:00.000Z', '2040-02-01T00:00:00.000Z', 17 * 24 * HOUR, second],
    ];
    expect(runtime('steady')).toEqual(halves('0.0137', '0.02'));
    expect(runtime('big')).toEqual(halves('0.05', '0.05'));
    for (const r of report.resources) {
      for (const line of r.lines) {
        expect(line.amount).toBe(costOf(line.meter, BigInt(line.quantity), line.unitPrice ?? '0'));
      }
      expect(r.total).toBe(r.lines.reduce((sum, l) => sum + l.amount, 0));
    }
    expect(resource(report, 'steady').total).toBe(
      costOf('database.runtime', 14 * 24 * HOUR, '0.0137') +
        costOf('database.runtime', 17 * 24 * HOUR, '0.02'),
    );
    expect(report.total).toBe(report.resources.reduce((sum, r) => sum + r.total, 0));
    expect(report.unpriced).toEqual([{ meter: 'database.storage', plan: '' }]);
  });
});

describe('the month closes in the org’s time zone', () => {
  async function periodOf(pool: pg.Pool, org: string, month: string) {
    const { rows } = await pool.query<{ tz: string }>(
      "SELECT spec->>'timeZone' AS tz FROM resources WHERE kind = 'Org' AND name = $1",
      [org],
    );
    return billingPeriod(rows[0]!.tz, 0, month);
  }

  it('bills Berlin’s 743-hour March, puts its last UTC quarter-hour in April, and bills nothing for missing time', async () => {
    const store = await freshStore();
    await addTenant(store.pool, 'berlin', { timeZone: 'Europe/Berlin' });
    const march = await periodOf(store.pool, 'berlin', '2040-03');
    const april = await periodOf(store.pool, 'berlin', '2040-04');
    expect(march.to - march.from).toBe(743 * HOUR);
    expect(march.to).toBe(t('2040-03-31T22:00:00Z'));
    await addPrice(store.prices, 'database.runtime', '', '0.0137', t('2040-02-01T00:00:00Z'));
    const whole = await addDatabase(store.pool, 'whole');
    const late = await addDatabase(store.pool, 'late');
    const gappy = await addDatabase(store.pool, 'gappy');

    // whole runs all of Berlin's March; late only in the quarter-hour 2040-03-31T22:00Z–22:15Z.
    const changes: Change[] = [
      { at: march.from, db: whole, state: running('small', 10) },
      { at: march.to, db: whole, state: 'deleted' },
      { at: march.to, db: late, state: running('small', 10) },
    ];
    await ingestAll(store.ledger, 'a', reportsOf(changes, march.from, march.to + INTERVAL_SECONDS));
    // gappy's agent is down for two hours: it restarts from its journal and sees nothing in between.
    const down = t('2040-03-10T10:05:00Z');
    const before = new UsageRecorder();
    before.observe(gappy, databaseRates(running('small', 10)), march.from);
    const after = new UsageRecorder(before.cut(down));
    after.observe(gappy, databaseRates(running('small', 10)), down + 2 * HOUR);
    after.cut(march.to);
    await ingestAll(store.ledger, 'a', [[...after.pending()]]);

    const berlinMarch = await costReport(store, { org: 'berlin' }, march, march.to);
    const full = 743 * HOUR;
    expect(secondsOf(resource(berlinMarch, 'whole'), 'database.runtime')).toBe(full);
    expect(secondsOf(resource(berlinMarch, 'late'), 'database.runtime')).toBe(0);
    expect(secondsOf(resource(berlinMarch, 'gappy'), 'database.runtime')).toBe(full - 7200);
    expect(resource(berlinMarch, 'gappy').coverage).toEqual({
      expectedSeconds: full,
      observedSeconds: full - 7200,
      missingSeconds: 7200,
    });
    expect(resource(berlinMarch, 'gappy').total).toBe(costOf('database.runtime', full - 7200, '0.0137'));

    const berlinApril = await costReport(store, { org: 'berlin' }, april, april.to);
    const utcMarch = billingPeriod('UTC', 0, '2040-03');
    const inUtcMarch = await costReport(store, { org: 'berlin' }, utcMarch, utcMarch.to);
    expect(secondsOf(resource(berlinApril, 'late'), 'database.runtime')).toBe(INTERVAL_SECONDS);
    expect(secondsOf(resource(inUtcMarch, 'late'), 'database.runtime')).toBe(INTERVAL_SECONDS);
  });
});

describe('the forecast', () => {
  it('adds what the running database costs until the month ends, at the prices in effect now', async () => {
    const store = await freshStore();
    await addTenant(store.pool, 'acme');
    const june = billingPeriod('UTC', 0, '2040-06');
    const now = t('2040-06-15T12:00:00Z');
    const db = await addDatabase(store.pool, 'steady');
    await addPrice(store.prices, 'database.runtime', 'small', '0.0137', june.from);
    await addPrice(store.prices, 'database.storage', '', '0.10', june.from);
    const changes: Change[] = [{ at: june.from, db, state: running('small', 10) }];
    await ingestAll(store.ledger, 'a', reportsOf(changes, june.from, now));

    const report = await costReport(store, { org: 'acme' }, june, now);
    const cost = (seconds: number) =>
      costOf('database.runtime', seconds, '0.0137') + costOf('database.storage', 10 * seconds, '0.10');
    expect(report.total).toBe(cost(now - june.from));
    expect(report.forecast.total).toBe(report.total + cost(june.to - now));
  });
});

describe('a backup is metered while its object is stored', () => {
  it('joins the ledger when its object is stored, on the target that took it, and costs its bytes until it is deleted', async () => {
    const store = await freshStore();
    await addTenant(store.pool, 'acme');
    const july = billingPeriod('UTC', 0, '2040-07');
    await addPrice(store.prices, 'backup.storage', '', '0.05', july.from);
    const stored = t('2040-07-10T06:20:00Z');
    const now = t('2040-07-20T00:00:00Z');
    const bytes = 3_000_000_000;
    const uid = await addRow(store.pool, {
      kind: 'Backup',
      project: 'web',
      name: 'nightly',
      spec: { database: 'orders' },
    });
    const failed = await addRow(store.pool, {
      kind: 'Backup',
      project: 'web',
      name: 'failed',
      spec: { database: 'orders' },
    });
    const recorder = new UsageRecorder();
    recorder.observe(
      { uid, kind: 'Backup', project: 'web', name: 'nightly' },
      backupRates({ engine: 'postgres', bytes }),
      stored,
    );
    recorder.cut(now);
    const report = [...recorder.pending()];

    // Until its object is stored a backup is not metered: nothing reported of it is taken.
    expect((await store.ledger.ingest('a', report)).rejected.map((r) => r.resourceUid)).toEqual([uid]);
    // Its agent records the object (and a failed backup records none).
    const status = {
      phase: 'Succeeded',
      target: 'a',
      engine: 'postgres',
      completedAt: new Date(stored * 1000).toISOString(),
      object: { store: 'fs', key: 'k', size: bytes, sha256: 'x', etag: 'e', format: 'pg_dump' },
    };
    await store.pool.query('UPDATE resources SET status = $2 WHERE uid = $1', [uid, status]);
    await store.pool.query('UPDATE resources SET status = $2 WHERE uid = $1', [
      failed,
      { phase: 'Failed', target: 'a' },
    ]);
    expect((await store.ledger.ingest('b', report)).rejected.map((r) => r.resourceUid)).toEqual([uid]);
    await ingestAll(store.ledger, 'a', [report]);

    const month = await costReport(store, { org: 'acme' }, july, now);
    expect(month.resources.map((r) => r.name)).toEqual(['nightly']);
    const nightly = resource(month, 'nightly');
    expect(nightly.kind).toBe('Backup');
    expect(nightly.coverage).toEqual({
      expectedSeconds: now - stored,
      observedSeconds: now - stored,
      missingSeconds: 0,
    });
    const held = BigInt(bytes) * BigInt(now - stored);
    expect(nightly.lines.map((l) => [l.meter, l.quantity, l.priceUnit])).toEqual([
      ['backup.storage', String(held), 'GB-month'],
    ]);
    expect(month.total).toBe(costOf('backup.storage', held, '0.05'));
    expect(month.total).toBeGreaterThan(0);
    expect(month.forecast.total).toBe(
      month.total + costOf('backup.storage', BigInt(bytes) * BigInt(july.to - now), '0.05'),
    );

    // Deleted: it costs what it held until then, and nothing ahead.
    await removeRow(store.pool, uid, now);
    const after = await costReport(store, { org: 'acme' }, july, now);
    expect(resource(after, 'nightly').deleted).toBe(true);
    expect(after.total).toBe(month.total);
    expect(after.forecast.total).toBe(after.total);
  });
});

describe('the cost per day', () => {
  it('prices each day of the org’s time zone on its own, per project', async () => {
    const store = await freshStore();
    await addTenant(store.pool, 'berlin', { timeZone: 'Europe/Berlin' });
    const may = billingPeriod('Europe/Berlin', 0, '2040-05');
    await addPrice(store.prices, 'database.runtime', '', '0.0137', may.from);
    await addPrice(store.prices, 'database.storage', '', '0.10', may.from);
    const db = await addDatabase(store.pool, 'steady');
    const end = may.from + 48 * HOUR; // Berlin's midnight, 22:00Z
    const changes: Change[] = [
      { at: may.from, db, state: running('small', 10) },
      { at: end, db, state: 'deleted' },
    ];
    await ingestAll(store.ledger, 'a', reportsOf(changes, may.from, end, 6 * HOUR));

    const report = await costReport(store, { org: 'berlin' }, may, may.to);
    const day =
      costOf('database.runtime', 24 * HOUR, '0.0137') + costOf('database.storage', 240 * HOUR, '0.10');
    expect(report.days).toEqual([
      { date: '2040-05-01', project: 'web', amount: day },
      { date: '2040-05-02', project: 'web', amount: day },
    ]);
    // Each day rounded on its own: 2 × (33 + 3) cents, where the month's lines bill 66 + 7.
    expect(2 * day).toBe(72);
    expect(report.total).toBe(73);
  });
});
