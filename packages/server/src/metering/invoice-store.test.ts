import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { migrate } from '../store/migrate.js';
import { createTestDatabase } from '../testing/test-postgres.js';
import { billingPeriod } from './cost-report.js';
import { INTERVAL_SECONDS } from './meters.js';
import { CLOSE_GRACE_SECONDS, InvoiceRefused, InvoiceStore } from './invoice-store.js';
import { PriceBook } from './price-book.js';
import { amountOf, parseUnitPrice } from './pricing.js';
import { UsageLedger } from './usage-ledger.js';
import type { UsageSample } from './usage-recorder.js';

// Prices cannot take effect in the past, so the invoiced month lies in the future (January 2040).
const MONTH = '2040-01';
const FROM = Date.parse('2040-01-01T00:00:00Z') / 1000;
const TO = Date.parse('2040-02-01T00:00:00Z') / 1000;

const pools: pg.Pool[] = [];
afterAll(() => Promise.all(pools.map((p) => p.end())));

async function pool(url: string): Promise<pg.Pool> {
  const p = new pg.Pool({ connectionString: url });
  pools.push(p);
  return p;
}

/** A migrated store with orgs (each with project <org>-web and database <org>-db on target a) and prices. */
async function store(orgs: Array<{ name: string; timeZone?: string }>) {
  const url = await createTestDatabase(inject('pg'));
  const p = await pool(url);
  await migrate(p);
  const prices = new PriceBook(p);
  await prices.add({
    meter: 'database.runtime',
    plan: '',
    currency: 'EUR',
    unitPrice: parseUnitPrice('0.0137', 'EUR')!,
    effectiveFrom: FROM,
    createdBy: 'test',
  });
  const dbs = new Map<string, string>();
  for (const org of orgs) {
    const row = async (kind: string, project: string, name: string, spec: object) => {
      const uid = randomUUID();
      await p.query(
        `INSERT INTO resources (kind, project, name, uid, generation, resource_version, spec, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 1, 1, $5, to_timestamp($6), now())`,
        [kind, project, name, uid, spec, FROM],
      );
      return uid;
    };
    await row('Org', '', org.name, org.timeZone ? { timeZone: org.timeZone } : {});
    await row('Project', '', `${org.name}-web`, { org: org.name });
    dbs.set(
      org.name,
      await row('Database', `${org.name}-web`, `${org.name}-db`, { target: 'a', plan: 'small' }),
    );
  }
  const ledger = new UsageLedger(p);
  return { url, pool: p, ledger, prices, dbs, invoices: new InvoiceStore({ pool: p, ledger, prices }) };
}

/** Final runtime samples of uid for every quarter-hour of [from, to): it ran from its creation on. */
function month(uid: string, name: string, from = FROM, to = TO + 86_400): UsageSample[] {
  const samples: UsageSample[] = [];
  for (let start = from; start < to; start += INTERVAL_SECONDS)
    samples.push({
      resourceUid: uid,
      kind: 'Database',
      project: `${name.replace(/-db$/, '')}-web`,
      name,
      meter: 'database.runtime',
      dimensions: { engine: 'postgres', plan: 'small' },
      intervalStart: start,
      seconds: INTERVAL_SECONDS,
      quantity: String(INTERVAL_SECONDS),
      final: true,
    });
  return samples;
}

async function ingest(ledger: UsageLedger, samples: UsageSample[]): Promise<void> {
  for (let i = 0; i < samples.length; i += 500) await ledger.ingest('a', samples.slice(i, i + 500));
}

const period = billingPeriod('UTC', FROM, MONTH);

describe('closing a month', () => {
  it('issues one invoice however many replicas close it at once, with the month priced line by line', async () => {
    const s = await store([{ name: 'acme' }]);
    await ingest(s.ledger, month(s.dbs.get('acme')!, 'acme-db'));
    // Four replicas, each with its own connections, close the same month at the same moment.
    const replicas = await Promise.all(
      [1, 2, 3, 4].map(async () => {
        const p = await pool(s.url);
        const ledger = new UsageLedger(p);
        return new InvoiceStore({ pool: p, ledger, prices: new PriceBook(p) });
      }),
    );
    const issued = await Promise.all(replicas.map((r) => r.close('acme', period, 'system:billing')));
    expect(new Set(issued.map((i) => i!.number)).size).toBe(1);
    const { rows } = await s.pool.query('SELECT count(*)::int AS n FROM invoices');
    expect(rows[0].n).toBe(1);
    const invoice = issued[0]!;
    const seconds = TO - FROM;
    expect(invoice).toMatchObject({
      kind: 'invoice',
      org: 'acme',
      currency: 'EUR',
      period: { month: MONTH, timeZone: 'UTC' },
      total: Number(amountOf('database.runtime', BigInt(seconds), parseUnitPrice('0.0137', 'EUR')!)),
    });
    expect(invoice.lines).toEqual([
      expect.objectContaining({
        number: 1,
        resource: 'db/acme-db',
        quantity: String(seconds),
        unitPrice: '0.0137',
      }),
    ]);
    expect(invoice.total).toBe(invoice.lines.reduce((sum, l) => sum + l.amount, 0));
    // Closing again returns the same document.
    expect(await s.invoices.close('acme', period, 'system:billing')).toEqual(invoice);
  });

  it('gives the same invoice when every report arrives twice and out of order', async () => {
    const once = await store([{ name: 'acme' }]);
    const samples = month(once.dbs.get('acme')!, 'acme-db');
    await ingest(once.ledger, samples);
    const twice = await store([{ name: 'acme' }]);
    // The same database (uid) in the second store: its row replaced by one with the first's uid.
    await twice.pool.query('UPDATE resources SET uid = $1 WHERE uid = $2', [
      once.dbs.get('acme'),
      twice.dbs.get('acme'),
    ]);
    await twice.pool.query('UPDATE metered_resources SET uid = $1 WHERE uid = $2', [
      once.dbs.get('acme'),
      twice.dbs.get('acme'),
    ]);
    const shuffled = [...samples, ...samples].sort(
      (a, b) => ((a.intervalStart * 7919) % 1009) - ((b.intervalStart * 7919) % 1009),
    );
    await ingest(twice.ledger, shuffled);
    const a = (await once.invoices.close('acme', period, 'test'))!;
    const b = (await twice.invoices.close('acme', period, 'test'))!;
    expect({ ...b, issuedAt: a.issuedAt }).toEqual(a);
  });

  it('closes each org after its own month and the grace hour, in its own time zone', async () => {
    const s = await store([{ name: 'utc' }, { name: 'berlin', timeZone: 'Europe/Berlin' }]);
    await ingest(s.ledger, month(s.dbs.get('utc')!, 'utc-db'));
    await ingest(s.ledger, month(s.dbs.get('berlin')!, 'berlin-db'));
    // Berlin's January ends an hour before UTC's (CET, +01:00).
    const berlinEnd = TO - 3600;
    expect(await s.invoices.closeDue(berlinEnd + CLOSE_GRACE_SECONDS - 1)).toEqual([]);
    const first = await s.invoices.closeDue(berlinEnd + CLOSE_GRACE_SECONDS);
    expect(first.map((i) => [i.org, i.period.month, i.period.timeZone])).toEqual([
      ['berlin', MONTH, 'Europe/Berlin'],
    ]);
    expect(first[0]!.period.from).toBe('2039-12-31T23:00:00.000Z');
    const second = await s.invoices.closeDue(TO + CLOSE_GRACE_SECONDS);
    expect(second.map((i) => i.org)).toEqual(['utc']); // berlin's was issued already
  });
});

describe('invoices stay as issued', () => {
  it('refuses to change or remove an invoice; corrections are credit notes, numbered without gaps', async () => {
    const s = await store([{ name: 'a1' }, { name: 'b1' }]);
    await ingest(s.ledger, month(s.dbs.get('a1')!, 'a1-db'));
    await ingest(s.ledger, month(s.dbs.get('b1')!, 'b1-db'));
    const a = (await s.invoices.close('a1', period, 'test'))!;
    const b = (await s.invoices.close('b1', period, 'test'))!;
    await expect(s.pool.query('UPDATE invoices SET total = 0')).rejects.toThrow(/invoices are immutable/);
    await expect(s.pool.query('DELETE FROM invoices')).rejects.toThrow(/invoices are immutable/);

    const note = await s.invoices.credit('a1', a.number, 500, 'outage on 3 January', 'operator:admin');
    expect(note).toMatchObject({
      kind: 'credit-note',
      org: 'a1',
      corrects: a.number,
      total: -500,
      reason: 'outage on 3 January',
    });
    const year = a.number.slice(0, 4);
    expect([a.number, b.number, note.number]).toEqual([`${year}-000001`, `${year}-000002`, `${year}-000003`]);
    // Never more than the invoice still bills; a refused one takes no number.
    const refused = await s.invoices
      .credit('a1', a.number, a.total, 'too much', 'x')
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InvoiceRefused);
    expect((refused as InvoiceRefused).field).toBe('amount');
    const next = await s.invoices.credit('a1', a.number, a.total - 500, 'the rest', 'x');
    expect(next.number).toBe(`${year}-000004`);
    expect((await s.invoices.list('a1')).map((i) => [i.number, i.kind, i.total])).toEqual([
      [next.number, 'credit-note', -(a.total - 500)],
      [note.number, 'credit-note', -500],
      [a.number, 'invoice', a.total],
    ]);
    // Another org's invoice is not found from this one.
    await expect(s.invoices.credit('b1', a.number, 1, 'x', 'x')).rejects.toMatchObject({ notFound: true });
  });
});
