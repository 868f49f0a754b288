import { randomUUID } from 'node:crypto';
import { type Condition, type Resource, budgetSchema, findCondition } from '@kumo/api';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { StatusWriter } from '../controllers/runtime/status-writer.js';
import { createLogger } from '../logger.js';
import { EventStore } from '../store/event-store.js';
import { migrate } from '../store/migrate.js';
import { ResourceStore } from '../store/resource-store.js';
import { startTestKumo } from '../testing/test-kumo.js';
import { createTestDatabase } from '../testing/test-postgres.js';
import { waitFor } from '../testing/wait.js';
import { BudgetWatcher } from './budget-watcher.js';
import { INTERVAL_SECONDS } from './meters.js';
import { PriceBook } from './price-book.js';
import { parseUnitPrice } from './pricing.js';
import { UsageLedger } from './usage-ledger.js';
import type { UsageSample } from './usage-recorder.js';

// Prices cannot take effect in the past, so the month lies in the future (January 2040, UTC). At
// 1.00 EUR an hour, every quarter-hour a database runs costs 0.25 EUR; it runs all month, so the
// forecast is 744 hours, 744.00 EUR.
const FROM = Date.parse('2040-01-01T00:00:00Z') / 1000;
const TO = Date.parse('2040-02-01T00:00:00Z') / 1000;
const QUARTER = INTERVAL_SECONDS;

const pools: pg.Pool[] = [];
afterAll(() => Promise.all(pools.map((p) => p.end())));

function newPool(url: string): pg.Pool {
  const p = new pg.Pool({ connectionString: url });
  pools.push(p);
  return p;
}

function watcherOn(pool: pg.Pool): BudgetWatcher {
  const store = new ResourceStore(pool);
  return new BudgetWatcher({
    pool,
    ledger: new UsageLedger(pool),
    prices: new PriceBook(pool),
    store,
    status: new StatusWriter(store, new EventStore(pool)),
    logger: createLogger('silent'),
  });
}

/** A migrated store with orgs acme and other (each with project <org>-web running database <org>-db). */
async function setUp(options: { priced?: boolean } = {}) {
  const url = await createTestDatabase(inject('pg'));
  const pool = newPool(url);
  await migrate(pool);
  if (options.priced ?? true)
    await new PriceBook(pool).add({
      meter: 'database.runtime',
      plan: '',
      currency: 'EUR',
      unitPrice: parseUnitPrice('1.00', 'EUR')!,
      effectiveFrom: FROM,
      createdBy: 'test',
    });
  const dbs = new Map<string, string>();
  const row = async (kind: string, project: string, name: string, spec: object) => {
    const uid = randomUUID();
    await pool.query(
      `INSERT INTO resources (kind, project, name, uid, generation, resource_version, spec, created_at, updated_at)
       VALUES ($1, $2, $3, $4, 1, 1, $5, to_timestamp($6), now())`,
      [kind, project, name, uid, spec, FROM],
    );
    return uid;
  };
  for (const org of ['acme', 'other']) {
    await row('Org', '', org, {});
    await row('Project', '', `${org}-web`, { org });
    dbs.set(org, await row('Database', `${org}-web`, `${org}-db`, { target: 'a', plan: 'small' }));
  }
  const store = new ResourceStore(pool);
  const events = new EventStore(pool);
  const ledger = new UsageLedger(pool);
  const orgKey = (name: string) => ({ kind: 'Org', project: '', name });
  const projectKey = (name: string) => ({ kind: 'Project', project: '', name });
  return {
    url,
    pool,
    store,
    watcher: watcherOn(pool),
    orgKey,
    projectKey,
    /** Final runtime samples of org's database for its first `quarters` quarter-hours of January. */
    async runFor(org: string, quarters: number): Promise<void> {
      const samples: UsageSample[] = [];
      for (let i = 0; i < quarters; i++)
        samples.push({
          resourceUid: dbs.get(org)!,
          kind: 'Database',
          project: `${org}-web`,
          name: `${org}-db`,
          meter: 'database.runtime',
          dimensions: { engine: 'postgres', plan: 'small' },
          intervalStart: FROM + i * QUARTER,
          seconds: QUARTER,
          quantity: String(QUARTER),
          final: true,
        });
      await ledger.ingest('a', samples);
    },
    /** Sets (or, with undefined, removes) the budget in the spec, defaults applied as the API does. */
    async budget(key: { kind: string; project: string; name: string }, budget?: object): Promise<void> {
      await store.update(
        key,
        (current) => {
          const { budget: _old, ...spec } = current.spec;
          return { spec: budget ? { ...spec, budget: budgetSchema.parse(budget) } : spec };
        },
        { actor: 'test' },
      );
    },
    async get(key: { kind: string; project: string; name: string }): Promise<Resource> {
      return (await store.get(key))!;
    },
    async events(key: { kind: string; project: string; name: string }) {
      const resource = (await store.get(key))!;
      return (await events.list(key, resource.metadata.uid)).filter(
        (e) => e.reason === 'BudgetThresholdCrossed',
      );
    },
  };
}

const withinBudget = (r: Resource) =>
  findCondition(r.status.conditions as Condition[] | undefined, 'WithinBudget');
/** The moment the first `quarters` quarter-hours of January are over. */
const after = (quarters: number) => FROM + quarters * QUARTER;

describe('budget watcher', () => {
  it('shows a budget not yet at its first threshold as WithinBudget, without an event', async () => {
    const s = await setUp();
    await s.budget(s.orgKey('acme'), { amount: '10.00' });
    await s.runFor('acme', 4);
    await s.watcher.run(after(4));
    const acme = await s.get(s.orgKey('acme'));
    expect(withinBudget(acme)).toMatchObject({
      status: 'True',
      reason: 'UnderBudget',
      message: '10 % of the budget this month (1.00 of 10.00 EUR), forecast 7440 %; thresholds 50, 80, 100',
    });
    expect(acme.status.budget).toEqual({
      month: '2040-01',
      amount: '10.00',
      percent: 10,
      crossed: 0,
      forecastPercent: 7440,
    });
    expect(await s.events(s.orgKey('acme'))).toEqual([]);
  });

  it('announces each threshold crossed once, however many replicas check at the same moment, and goes False at 100 %', async () => {
    const s = await setUp();
    await s.budget(s.orgKey('acme'), { amount: '10.00' });
    const replicas = [s.watcher, watcherOn(newPool(s.url)), watcherOn(newPool(s.url))];
    const checkEverywhere = async (now: number) => {
      await Promise.all(replicas.map((r) => r.run(now)));
      await Promise.all(replicas.map((r) => r.run(now)));
    };

    await s.runFor('acme', 21); // 5.25 EUR: 52 %
    await checkEverywhere(after(21));
    await s.runFor('acme', 33); // 8.25 EUR: 82 %
    await checkEverywhere(after(33));
    let acme = await s.get(s.orgKey('acme'));
    expect(withinBudget(acme)).toMatchObject({
      status: 'True',
      reason: 'ThresholdCrossed',
      message: '82 % of the budget this month (8.25 of 10.00 EUR), forecast 7440 %; thresholds 50, 80, 100',
    });
    expect(acme.status.budget).toMatchObject({ percent: 82, crossed: 80 });
    expect(await s.events(s.orgKey('acme'))).toEqual([
      expect.objectContaining({
        type: 'Warning',
        message: 'crossed 50 % of the budget of org acme: 5.25 of 10.00 EUR this month',
        count: 1,
      }),
      expect.objectContaining({
        type: 'Warning',
        message: 'crossed 80 % of the budget of org acme: 8.25 of 10.00 EUR this month',
        count: 1,
      }),
    ]);

    await s.runFor('acme', 40); // 10.00 EUR: 100 %
    await checkEverywhere(after(40));
    acme = await s.get(s.orgKey('acme'));
    expect(withinBudget(acme)).toMatchObject({ status: 'False', reason: 'OverBudget' });
    expect(acme.status.budget).toMatchObject({ percent: 100, crossed: 100 });
    const events = await s.events(s.orgKey('acme'));
    expect(events.map((e) => [e.message, e.count])).toEqual([
      ['crossed 50 % of the budget of org acme: 5.25 of 10.00 EUR this month', 1],
      ['crossed 80 % of the budget of org acme: 8.25 of 10.00 EUR this month', 1],
      ['crossed 100 % of the budget of org acme: 10.00 of 10.00 EUR this month', 1],
    ]);
  });

  it('announces only the highest of several thresholds crossed between two checks', async () => {
    const s = await setUp();
    await s.budget(s.orgKey('acme'), { amount: '10.00' });
    await s.runFor('acme', 34); // 8.50 EUR: 85 %, past 50 and 80 at once
    await s.watcher.run(after(34));
    expect((await s.events(s.orgKey('acme'))).map((e) => e.message)).toEqual([
      'crossed 80 % of the budget of org acme: 8.50 of 10.00 EUR this month',
    ]);
  });

  it('starts a new month from 0, without an event', async () => {
    const s = await setUp();
    await s.budget(s.orgKey('acme'), { amount: '10.00' });
    await s.runFor('acme', 40);
    await s.watcher.run(after(40));
    await s.watcher.run(TO + 3600); // February: nothing reported yet
    const acme = await s.get(s.orgKey('acme'));
    expect(acme.status.budget).toMatchObject({ month: '2040-02', percent: 0, crossed: 0 });
    expect(withinBudget(acme)).toMatchObject({ status: 'True', reason: 'UnderBudget' });
    expect(await s.events(s.orgKey('acme'))).toHaveLength(1); // January's 100 %
  });

  it("puts a project's budget on the project's status, not the org's", async () => {
    const s = await setUp();
    await s.budget(s.projectKey('acme-web'), { amount: '2.00', thresholds: [40] });
    await s.runFor('acme', 4); // 1.00 EUR: 50 %
    await s.watcher.run(after(4));
    const project = await s.get(s.projectKey('acme-web'));
    expect(withinBudget(project)).toMatchObject({
      status: 'True',
      reason: 'ThresholdCrossed',
      message: '50 % of the budget this month (1.00 of 2.00 EUR), forecast 37200 %; thresholds 40',
    });
    expect((await s.events(s.projectKey('acme-web'))).map((e) => e.message)).toEqual([
      'crossed 40 % of the budget of project acme-web: 1.00 of 2.00 EUR this month',
    ]);
    const acme = await s.get(s.orgKey('acme'));
    expect(withinBudget(acme)).toBeUndefined();
    expect(acme.status.budget).toBeUndefined();
  });

  it('removes the condition when the budget is removed', async () => {
    const s = await setUp();
    await s.budget(s.orgKey('acme'), { amount: '10.00' });
    await s.runFor('acme', 4);
    await s.watcher.run(after(4));
    expect(withinBudget(await s.get(s.orgKey('acme')))).toBeDefined();
    await s.budget(s.orgKey('acme'));
    await s.watcher.run(after(4));
    const acme = await s.get(s.orgKey('acme'));
    expect(withinBudget(acme)).toBeUndefined();
    expect(acme.status.budget).toBeUndefined();
  });

  it('shows no condition while the price book has no price', async () => {
    const s = await setUp({ priced: false });
    await s.budget(s.orgKey('acme'), { amount: '10.00' });
    await s.runFor('acme', 4);
    await s.watcher.run(after(4));
    const acme = await s.get(s.orgKey('acme'));
    expect(withinBudget(acme)).toBeUndefined();
    expect(acme.status.budget).toBeUndefined();
  });

  it("never shows another org's budget or cost on an org", async () => {
    const s = await setUp();
    await s.budget(s.orgKey('other'), { amount: '1.00' });
    await s.budget(s.orgKey('acme'), { amount: '10.00' });
    await s.runFor('other', 8); // 2.00 EUR: 200 % of other's budget
    await s.runFor('acme', 4); // 1.00 EUR: 10 % of acme's
    await s.watcher.run(after(8));
    expect(withinBudget(await s.get(s.orgKey('other')))).toMatchObject({ reason: 'OverBudget' });
    const acme = await s.get(s.orgKey('acme'));
    expect(withinBudget(acme)).toMatchObject({ status: 'True', reason: 'UnderBudget' });
    expect(acme.status.budget).toMatchObject({ percent: 10, crossed: 0 });
    expect(await s.events(s.orgKey('acme'))).toEqual([]);
    const project = await s.get(s.projectKey('other-web'));
    expect(withinBudget(project)).toBeUndefined();
  });
});

describe('a budget set through the API', () => {
  it('is checked at once, not at the next five-minute pass', async () => {
    const t = await startTestKumo(inject('pg'));
    try {
      const priced = await t.request('/v1/billing/prices', {
        method: 'POST',
        json: { meter: 'database.runtime', currency: 'EUR', unitPrice: '1' },
      });
      expect(priced.status).toBe(201);
      // Created after the watcher's first pass (at start), and given a budget afterwards.
      expect(
        (await t.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'acme' }, spec: {} } }))
          .status,
      ).toBe(201);
      const patched = await t.request('/v1/orgs/acme', {
        method: 'PATCH',
        headers: { 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify({ spec: { budget: { amount: '50.00' } } }),
      });
      expect(patched.status).toBe(200);
      const org = await waitFor(async () => {
        const r = (await (await t.request('/v1/orgs/acme')).json()) as Resource;
        return r.status.budget ? r : undefined;
      }, 'the budget to be checked');
      expect(org.status.budget).toMatchObject({ amount: '50.00', percent: 0 });
      expect(findCondition(org.status.conditions as Condition[], 'WithinBudget')).toMatchObject({
        status: 'True',
      });
    } finally {
      await t.stop();
    }
  });
});
