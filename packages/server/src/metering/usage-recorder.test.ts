import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { billingPeriod } from './cost-report.js';
import { INTERVAL_SECONDS, type MeterName, dimensionKey } from './meters.js';
import { amountOf } from './pricing.js';
import {
  type MeteredSubject,
  type RecorderSnapshot,
  type UsageSample,
  UsageRecorder,
} from './usage-recorder.js';
import { type DatabaseState, databaseRates } from './database-usage.js';

/** Epoch seconds of a wall-clock time ("10:07:30") on 2026-12-01 in UTC. */
function at(clock: string): number {
  const [h, m, s] = clock.split(':').map(Number);
  return Date.UTC(2026, 11, 1, h, m, s ?? 0) / 1000;
}

/** The wall-clock time ("10:15") of an interval's start, as at() reads it. */
function clockOf(t: number): string {
  return new Date(t * 1000).toISOString().slice(11, 16);
}

const orders: MeteredSubject = { uid: 'db-orders', kind: 'Database', project: 'shop', name: 'orders' };
const small: DatabaseState = { running: true, engine: 'postgres', plan: 'small', storageGB: 10 };

/** A sample as a reader checks it: meter, plan (runtime only), interval, seconds, quantity. */
function row(s: UsageSample) {
  return {
    meter: s.meter,
    ...(s.dimensions.plan ? { plan: s.dimensions.plan } : {}),
    at: clockOf(s.intervalStart),
    seconds: s.seconds,
    quantity: s.quantity,
  };
}

/** The samples of one meter, oldest first (a plan's split ordered by plan name). */
function rows(samples: readonly UsageSample[], meter: MeterName) {
  return samples
    .filter((s) => s.meter === meter)
    .sort(
      (a, b) =>
        a.intervalStart - b.intervalStart ||
        dimensionKey(a.dimensions).localeCompare(dimensionKey(b.dimensions)),
    )
    .map(row);
}

describe('UsageRecorder, by example', () => {
  it('splits a run into quarter-hours: runtime in seconds, storage in GB-seconds', () => {
    const recorder = new UsageRecorder();
    recorder.observe(orders, databaseRates(small), at('10:07:30'));
    recorder.ended(orders.uid, at('10:52:10'));

    expect(rows(recorder.pending(), 'database.runtime')).toEqual([
      { meter: 'database.runtime', plan: 'small', at: '10:00', seconds: 450, quantity: '450' },
      { meter: 'database.runtime', plan: 'small', at: '10:15', seconds: 900, quantity: '900' },
      { meter: 'database.runtime', plan: 'small', at: '10:30', seconds: 900, quantity: '900' },
      { meter: 'database.runtime', plan: 'small', at: '10:45', seconds: 430, quantity: '430' },
    ]);
    expect(rows(recorder.pending(), 'database.storage')).toEqual([
      { meter: 'database.storage', at: '10:00', seconds: 450, quantity: '4500' },
      { meter: 'database.storage', at: '10:15', seconds: 900, quantity: '9000' },
      { meter: 'database.storage', at: '10:30', seconds: 900, quantity: '9000' },
      { meter: 'database.storage', at: '10:45', seconds: 430, quantity: '4300' },
    ]);
    const sample = recorder.pending()[0]!;
    expect(sample).toMatchObject({
      resourceUid: 'db-orders',
      kind: 'Database',
      project: 'shop',
      name: 'orders',
    });
    expect(sample.dimensions).toEqual({ engine: 'postgres', plan: 'small' });
  });

  it('splits an interval at the second a plan change is seen, one sample per plan', () => {
    const recorder = new UsageRecorder();
    recorder.observe(orders, databaseRates(small), at('10:15:00'));
    recorder.observe(orders, databaseRates({ ...small, plan: 'large' }), at('10:20:05'));
    recorder.cut(at('10:30:00'));

    expect(rows(recorder.pending(), 'database.runtime')).toEqual([
      { meter: 'database.runtime', plan: 'large', at: '10:15', seconds: 595, quantity: '595' },
      { meter: 'database.runtime', plan: 'small', at: '10:15', seconds: 305, quantity: '305' },
    ]);
    // Storage does not depend on the plan: one sample for the whole quarter-hour.
    expect(rows(recorder.pending(), 'database.storage')).toEqual([
      { meter: 'database.storage', at: '10:15', seconds: 900, quantity: '9000' },
    ]);
  });

  it('counts storage but no runtime while the database is stopped', () => {
    const recorder = new UsageRecorder();
    recorder.observe(orders, databaseRates(small), at('10:00:00'));
    recorder.observe(orders, databaseRates({ ...small, running: false }), at('10:05:00'));
    recorder.observe(orders, databaseRates(small), at('10:20:00'));
    recorder.cut(at('10:30:00'));

    expect(rows(recorder.pending(), 'database.runtime')).toEqual([
      { meter: 'database.runtime', plan: 'small', at: '10:00', seconds: 300, quantity: '300' },
      { meter: 'database.runtime', plan: 'small', at: '10:15', seconds: 600, quantity: '600' },
    ]);
    expect(rows(recorder.pending(), 'database.storage')).toEqual([
      { meter: 'database.storage', at: '10:00', seconds: 900, quantity: '9000' },
      { meter: 'database.storage', at: '10:15', seconds: 900, quantity: '9000' },
    ]);
  });

  it('stops counting at the second a deletion finished, and makes its intervals final at once', () => {
    const recorder = new UsageRecorder();
    recorder.observe(orders, databaseRates(small), at('10:00:00'));
    recorder.ended(orders.uid, at('10:03:20'));

    expect(recorder.running()).toEqual([]);
    expect(recorder.pending().map((s) => [s.meter, s.seconds, s.final])).toEqual([
      ['database.runtime', 200, true],
      ['database.storage', 200, true],
    ]);
    // Nothing more accrues for it, however late the next cut.
    recorder.cut(at('11:00:00'));
    expect(recorder.pending().map((s) => s.seconds)).toEqual([200, 200]);
  });

  it('keeps a quarter-hour open until it is over, then makes it final', () => {
    const recorder = new UsageRecorder();
    recorder.observe(orders, databaseRates(small), at('10:00:00'));

    recorder.cut(at('10:14:59'));
    expect(recorder.pending()).toEqual([]);
    expect(recorder.running().map((s) => [s.meter, clockOf(s.intervalStart), s.seconds, s.final])).toEqual([
      ['database.runtime', '10:00', 899, false],
      ['database.storage', '10:00', 899, false],
    ]);

    recorder.cut(at('10:15:00'));
    expect(recorder.running()).toEqual([]);
    expect(recorder.pending().map((s) => [s.meter, clockOf(s.intervalStart), s.seconds, s.final])).toEqual([
      ['database.runtime', '10:00', 900, true],
      ['database.storage', '10:00', 900, true],
    ]);
  });

  it('forgets exactly the samples acknowledged', () => {
    const recorder = new UsageRecorder();
    recorder.observe(orders, databaseRates(small), at('10:00:00'));
    recorder.cut(at('10:30:00'));
    const [first, ...rest] = recorder.pending();

    // Acknowledged as the control plane echoes them: equal by key, not the same objects.
    const snapshot = recorder.acknowledged(JSON.parse(JSON.stringify([first])) as UsageSample[]);
    expect(recorder.pending()).toEqual(rest);
    expect(snapshot.outbox).toEqual(rest);

    // A sample that is not pending (another interval) forgets nothing.
    recorder.acknowledged([{ ...rest[0]!, intervalStart: at('11:00:00') }]);
    expect(recorder.pending()).toEqual(rest);
  });

  it('after a restart, counts what was seen before the snapshot and after, never the gap', () => {
    const before = new UsageRecorder();
    before.observe(orders, databaseRates(small), at('10:00:00'));
    const saved = JSON.parse(JSON.stringify(before.cut(at('10:04:00')))) as RecorderSnapshot;
    // Seen, but lost with the process: the snapshot is what survives.
    before.cut(at('10:06:00'));

    const after = new UsageRecorder(saved);
    after.observe(orders, databaseRates(small), at('10:10:00'));
    after.cut(at('10:15:00'));

    // 10:00–10:04 and 10:10–10:15; the agent was down from 10:04 to 10:10.
    expect(rows(after.pending(), 'database.runtime')).toEqual([
      { meter: 'database.runtime', plan: 'small', at: '10:00', seconds: 540, quantity: '540' },
    ]);
    expect(rows(after.pending(), 'database.storage')).toEqual([
      { meter: 'database.storage', at: '10:00', seconds: 540, quantity: '5400' },
    ]);
  });

  it('keeps final samples not yet acknowledged across a restart', () => {
    const before = new UsageRecorder();
    before.observe(orders, databaseRates(small), at('10:00:00'));
    const saved = JSON.parse(JSON.stringify(before.cut(at('10:20:00')))) as RecorderSnapshot;

    const after = new UsageRecorder(saved);
    expect(after.pending()).toEqual(before.pending());
    expect(after.running()).toEqual(before.running());
  });

  it('never counts more than a quarter-hour in one interval, even from an older snapshot', () => {
    const before = new UsageRecorder();
    before.observe(orders, databaseRates(small), at('10:00:00'));
    const saved = before.cut(at('10:10:00'));

    // The restarted agent's clock reads earlier than the snapshot's last second.
    const after = new UsageRecorder(saved);
    after.observe(orders, databaseRates(small), at('10:02:00'));
    after.cut(at('10:15:00'));

    expect(rows(after.pending(), 'database.runtime')).toEqual([
      { meter: 'database.runtime', plan: 'small', at: '10:00', seconds: 900, quantity: '900' },
    ]);
    expect(rows(after.pending(), 'database.storage')).toEqual([
      { meter: 'database.storage', at: '10:00', seconds: 900, quantity: '9000' },
    ]);
  });

  it('counts storage used only while it is measured', () => {
    const recorder = new UsageRecorder();
    recorder.observe(orders, databaseRates(small), at('10:00:00'));
    recorder.observe(orders, databaseRates({ ...small, usedBytes: 2_000_000 }), at('10:10:00'));
    recorder.observe(orders, databaseRates(small), at('10:20:00'));
    recorder.cut(at('10:45:00'));

    expect(rows(recorder.pending(), 'database.storage-used')).toEqual([
      { meter: 'database.storage-used', at: '10:00', seconds: 300, quantity: '600000000' },
      { meter: 'database.storage-used', at: '10:15', seconds: 300, quantity: '600000000' },
    ]);
  });

  it('counts nothing while the instance is absent', () => {
    const recorder = new UsageRecorder();
    recorder.observe(orders, databaseRates(small), at('10:00:00'));
    recorder.absent(orders.uid, at('10:02:00'));
    recorder.observe(orders, databaseRates(small), at('10:12:00'));
    recorder.cut(at('10:15:00'));

    expect(rows(recorder.pending(), 'database.runtime')).toEqual([
      { meter: 'database.runtime', plan: 'small', at: '10:00', seconds: 300, quantity: '300' },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// The property (issue 17): whatever happens to databases over a month, the samples add up to
// exactly the usage of the timeline, and bill to the same amount.

const PLANS = ['small', 'medium', 'large'] as const;
const ENGINES = ['postgres', 'mariadb'] as const;
const SLOTS = 3;

type Op =
  | { kind: 'create'; slot: number; plan: string; storageGB: number; engine: string }
  | { kind: 'plan'; slot: number; plan: string }
  | { kind: 'stop'; slot: number }
  | { kind: 'start'; slot: number }
  | { kind: 'storage'; slot: number; storageGB: number }
  | { kind: 'delete'; slot: number }
  /** The agent stops at t (after saving its snapshot) and comes back `down` seconds later. */
  | { kind: 'restart'; down: number }
  /** Extra: the agent looks at every database again, nothing changed. */
  | { kind: 'observe' }
  /** Extra: the agent cuts and reports, as its reporter does every minute. */
  | { kind: 'cut' };

/** How far after the previous event the next one happens; boundaries are where bugs hide. */
type Gap = { kind: 'seconds'; n: number } | { kind: 'boundary'; offset: -1 | 0 | 1 };

interface Event {
  /** Epoch seconds. */
  t: number;
  op: Op;
}

const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const plan = fc.constantFrom(...PLANS);
const storageGB = fc.integer({ min: 1, max: 100 });

const change: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      slot,
      plan,
      storageGB,
      engine: fc.constantFrom(...ENGINES),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('plan' as const), slot, plan }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('stop' as const), slot }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('start' as const), slot }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('storage' as const), slot, storageGB }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), slot }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('restart' as const),
      down: fc.integer({ min: 1, max: 2 * 86_400 }),
    }),
  },
);
const extra: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ kind: 'observe' as const }),
  fc.constant({ kind: 'cut' as const }),
);
const seconds = (max: number) =>
  fc.record({ kind: fc.constant('seconds' as const), n: fc.integer({ min: 1, max }) });
const gap: fc.Arbitrary<Gap> = fc.oneof(
  { weight: 4, arbitrary: seconds(2 * INTERVAL_SECONDS) },
  { weight: 2, arbitrary: seconds(3 * 3_600) },
  { weight: 1, arbitrary: seconds(2 * 86_400) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('boundary' as const),
      offset: fc.constantFrom(-1 as const, 0 as const, 1 as const),
    }),
  },
);
const steps = fc.array(
  fc.record({ gap, op: fc.oneof({ weight: 3, arbitrary: change }, { weight: 2, arbitrary: extra }) }),
  { maxLength: 60, size: 'max' },
);
/**
 * Most months end with every database deleted (shortly after the last step); one in five keeps
 * them to the month's end. Samples cost time, and a quarter-hour more of the same proves little.
 */
const teardown = fc.option(
  fc
    .array(gap, { minLength: SLOTS, maxLength: SLOTS })
    .map((gaps) => gaps.map((g, slot): { gap: Gap; op: Op } => ({ gap: g, op: { kind: 'delete', slot } }))),
  { freq: 5 },
);

/**
 * Gives each step its second, the first `offset` seconds into [from, to): strictly increasing,
 * inside [from, to), after any restart's downtime.
 */
function schedule(
  offset: number,
  list: ReadonlyArray<{ gap: Gap; op: Op }>,
  from: number,
  to: number,
): Event[] {
  const events: Event[] = [];
  let last = from + offset - 1;
  for (const { gap: g, op } of list) {
    let t = last + (g.kind === 'seconds' ? g.n : 0);
    if (g.kind === 'boundary') {
      t = Math.floor(last / INTERVAL_SECONDS) * INTERVAL_SECONDS + INTERVAL_SECONDS + g.offset;
      if (t <= last) t += INTERVAL_SECONDS;
    }
    if (t >= to) break;
    events.push({ t, op });
    last = op.kind === 'restart' ? t + op.down : t;
  }
  return events;
}

interface Database {
  subject: MeteredSubject;
  state: DatabaseState;
}

/** Applies a change to the databases in their slots: the one changed, or undefined when none applies. */
function apply(dbs: Map<number, Database>, op: Op, uid: () => string): Database | 'deleted' | undefined {
  if (op.kind === 'restart' || op.kind === 'observe' || op.kind === 'cut') return undefined;
  const db = dbs.get(op.slot);
  if (op.kind === 'create') {
    if (db) return undefined;
    const created: Database = {
      subject: { uid: uid(), kind: 'Database', project: 'shop', name: `db${op.slot}` },
      state: { running: true, engine: op.engine, plan: op.plan, storageGB: op.storageGB },
    };
    dbs.set(op.slot, created);
    return created;
  }
  if (!db) return undefined;
  if (op.kind === 'delete') {
    dbs.delete(op.slot);
    return 'deleted';
  }
  if (op.kind === 'plan') db.state = { ...db.state, plan: op.plan };
  if (op.kind === 'stop') db.state = { ...db.state, running: false };
  if (op.kind === 'start') db.state = { ...db.state, running: true };
  if (op.kind === 'storage') db.state = { ...db.state, storageGB: op.storageGB };
  return db;
}

const line = (uid: string, meter: MeterName, plan: string) => `${uid}|${meter}|${plan}`;

/**
 * The usage straight from the timeline, per database, meter and plan: seconds running on a plan,
 * GB × seconds existing; nothing while the agent was down. Ignores the extra observations and cuts.
 */
function timeline(events: readonly Event[], from: number, to: number): Map<string, bigint> {
  const usage = new Map<string, bigint>();
  const add = (key: string, q: bigint) => q > 0n && usage.set(key, (usage.get(key) ?? 0n) + q);
  const dbs = new Map<number, Database>();
  let uids = 0;
  let countedFrom = from;
  const credit = (until: number) => {
    const seconds = BigInt(Math.max(0, until - countedFrom));
    for (const { subject, state } of dbs.values()) {
      if (state.running) add(line(subject.uid, 'database.runtime', state.plan), seconds);
      add(line(subject.uid, 'database.storage', ''), seconds * BigInt(state.storageGB));
    }
  };
  for (const { t, op } of events) {
    if (op.kind === 'observe' || op.kind === 'cut') continue;
    credit(t);
    countedFrom = op.kind === 'restart' ? t + op.down : t;
    apply(dbs, op, () => `db-${uids++}`);
  }
  credit(to);
  return usage;
}

/** What the agent's recorder reports over the events, then a cut at the period's end: every final sample. */
function record(events: readonly Event[], to: number): UsageSample[] {
  const reported: UsageSample[] = [];
  const dbs = new Map<number, Database>();
  let uids = 0;
  let recorder = new UsageRecorder();
  const report = () => {
    const batch = [...recorder.pending()];
    reported.push(...batch);
    recorder.acknowledged(batch);
  };
  for (const { t, op } of events) {
    if (op.kind === 'observe') {
      for (const db of dbs.values()) recorder.observe(db.subject, databaseRates(db.state), t);
    } else if (op.kind === 'cut') {
      recorder.cut(t);
      expect(recorder.running().every((s) => !s.final && s.intervalStart + INTERVAL_SECONDS > t)).toBe(true);
      report();
    } else if (op.kind === 'restart') {
      const saved = JSON.parse(JSON.stringify(recorder.cut(t))) as RecorderSnapshot;
      recorder = new UsageRecorder(saved);
      const back = t + op.down;
      if (back < to)
        for (const db of dbs.values()) recorder.observe(db.subject, databaseRates(db.state), back);
    } else {
      const uid = dbs.get(op.slot)?.subject.uid;
      const result = apply(dbs, op, () => `db-${uids++}`);
      if (result === 'deleted') recorder.ended(uid!, t);
      else if (result) recorder.observe(result.subject, databaseRates(result.state), t);
    }
  }
  recorder.cut(to);
  expect(recorder.running()).toEqual([]);
  report();
  return reported;
}

/** Sums samples' quantities per database, meter and plan. */
function summed(samples: readonly UsageSample[]): Map<string, bigint> {
  const sums = new Map<string, bigint>();
  for (const s of samples) {
    const key = line(s.resourceUid, s.meter, s.dimensions.plan ?? '');
    sums.set(key, (sums.get(key) ?? 0n) + BigInt(s.quantity));
  }
  return sums;
}

/** Each line billed once from its exact quantity; the lines' amounts and their total. */
function bill(usage: Map<string, bigint>, unitPrice: (meter: MeterName, plan: string) => bigint) {
  const lines = new Map<string, bigint>();
  for (const [key, quantity] of usage) {
    const [, meter, plan] = key.split('|') as [string, MeterName, string];
    lines.set(key, amountOf(meter, quantity, unitPrice(meter, plan)));
  }
  return { lines, total: [...lines.values()].reduce((a, b) => a + b, 0n) };
}

const sampleKey = (s: UsageSample) =>
  `${s.resourceUid}|${s.meter}|${dimensionKey(s.dimensions)}|${s.intervalStart}`;

/** Samples as comparable text: key, seconds and quantity, one a line, sorted. */
const canonical = (list: readonly UsageSample[]) =>
  list
    .map((s) => `${sampleKey(s)} ${s.seconds}/${s.quantity}`)
    .sort()
    .join('\n');

describe('UsageRecorder, over any month', () => {
  // March 2027 in Berlin: 743 hours (daylight saving time starts on the 28th), from 23:00 UTC.
  const period = billingPeriod('Europe/Berlin', 0, '2027-03');
  // Up to 0.5 EUR an hour per plan, up to 1 EUR per GB-month, in millionths of a cent.
  const prices = fc.record({
    small: fc.bigInt({ min: 0n, max: 50_000_000n }),
    medium: fc.bigInt({ min: 0n, max: 50_000_000n }),
    large: fc.bigInt({ min: 0n, max: 50_000_000n }),
    storage: fc.bigInt({ min: 0n, max: 100_000_000n }),
  });

  it('reports exactly the usage of the timeline, in well-formed samples, billed to the same amount', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: period.to - period.from - 1 }),
        steps,
        teardown,
        prices,
        fc.integer({ min: 1, max: 31 }),
        (offset, list, end, price, days) => {
          const events = schedule(offset, [...list, ...(end ?? [])], period.from, period.to);
          const samples = record(events, period.to);
          const expected = timeline(events, period.from, period.to);

          // (a) Per database, meter and plan, the samples add up to the timeline exactly.
          expect(summed(samples)).toEqual(expected);

          // (b) Well-formed: final, 1..900 seconds in one quarter-hour of the month, each key once
          // (checked sample by sample, reported as the list of those that are not).
          const malformed = samples.filter(
            (s) =>
              !s.final ||
              s.seconds < 1 ||
              s.seconds > INTERVAL_SECONDS ||
              s.intervalStart % INTERVAL_SECONDS !== 0 ||
              s.intervalStart < period.from ||
              s.intervalStart >= period.to ||
              BigInt(s.quantity) < BigInt(s.seconds) ||
              BigInt(s.quantity) > BigInt(s.seconds) * (s.meter === 'database.runtime' ? 1n : 100n),
          );
          expect(malformed).toEqual([]);
          expect(new Set(samples.map(sampleKey)).size).toBe(samples.length);

          // Extra observations and cuts change nothing: the same samples as without them.
          const without = record(
            events.filter((e) => e.op.kind !== 'observe' && e.op.kind !== 'cut'),
            period.to,
          );
          expect(canonical(samples)).toBe(canonical(without));

          // (c) Billed from the samples or from the timeline: the same lines, the same total.
          const unitPrice = (meter: MeterName, p: string) =>
            meter === 'database.storage' ? price.storage : price[p as (typeof PLANS)[number]];
          const billed = bill(summed(samples), unitPrice);
          expect(billed).toEqual(bill(expected, unitPrice));

          // Summed in parts first (every `days` days of the month), a line still rounds once.
          const parts = new Map<number, UsageSample[]>();
          for (const s of samples) {
            const part = Math.floor((s.intervalStart - period.from) / (days * 86_400));
            const bucket = parts.get(part) ?? [];
            bucket.push(s);
            parts.set(part, bucket);
          }
          const fromParts = new Map<string, bigint>();
          for (const part of parts.values())
            for (const [key, q] of summed(part)) fromParts.set(key, (fromParts.get(key) ?? 0n) + q);
          expect(bill(fromParts, unitPrice)).toEqual(billed);
        },
      ),
      { numRuns: 200 },
    );
  });
});
