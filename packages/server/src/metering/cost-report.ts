import { TZDate } from '@date-fns/tz';
import type pg from 'pg';
import { backupRates } from './backup-usage.js';
import { databaseRates } from './database-usage.js';
import { METERS, type MeterDefinition, type MeterName } from './meters.js';
import type { PriceBook } from './price-book.js';
import { type Price, amountOf, formatMoney, formatUnitPrice, priceAt } from './pricing.js';
import type { UsageLedger } from './usage-ledger.js';

/** A calendar month in a time zone, as the epoch seconds it spans. */
export interface BillingPeriod {
  month: string;
  timeZone: string;
  from: number;
  to: number;
}

/** The month `month` ("2026-12") of timeZone; the month that holds `now` when month is absent. */
export function billingPeriod(timeZone: string, now: number, month?: string): BillingPeriod {
  let year: number;
  let index: number; // 0-based
  if (month) {
    const m = /^(\d{4})-(\d{2})$/.exec(month);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 12)
      throw new RangeError(`"${month}" is not a month (YYYY-MM)`);
    year = Number(m[1]);
    index = Number(m[2]) - 1;
  } else {
    const local = new TZDate(now * 1000, timeZone);
    year = local.getFullYear();
    index = local.getMonth();
  }
  const start = new TZDate(year, index, 1, 0, 0, 0, timeZone).getTime() / 1000;
  const end = new TZDate(year, index + 1, 1, 0, 0, 0, timeZone).getTime() / 1000;
  return { month: `${year}-${String(index + 1).padStart(2, '0')}`, timeZone, from: start, to: end };
}

export interface CostLine {
  meter: MeterName;
  dimensions: Record<string, string>;
  /** The part of the period this line's price held. */
  from: string;
  to: string;
  seconds: number;
  /** In the meter's unit-seconds (METERS[meter].unit). */
  quantity: string;
  unit: string;
  /** Major units per price unit, e.g. "0.0137" (per hour); absent when no price applies. */
  unitPrice?: string;
  priceUnit: string;
  /** Minor units. */
  amount: number;
}

export interface ResourceCost {
  uid: string;
  kind: string;
  project: string;
  name: string;
  deleted: boolean;
  /** Minor units. */
  total: number;
  /**
   * Seconds it existed in the period up to asOf, and how many of them its agent reported: the rest
   * is missing (an agent down, a target unreachable) and billed as nothing.
   */
  coverage: { expectedSeconds: number; observedSeconds: number; missingSeconds: number };
  lines: CostLine[];
}

export interface CostReport {
  org: string;
  project?: string;
  period: { month: string; timeZone: string; from: string; to: string };
  asOf: string;
  /** The price book's currency; absent while it has no price. */
  currency?: string;
  /** Minor units, and the same as a decimal in the major unit. */
  total: number;
  totalText: string;
  forecast: { total: number; totalText: string; assumption: string };
  projects: Array<{ project: string; total: number }>;
  /**
   * Cost per day (in the org's time zone) and project, for charts: each day's usage of a meter,
   * dimensions and price priced and rounded on its own, so the days need not add up exactly to
   * `total` (the lines over the whole month, which is what invoices bill). Days without usage are absent.
   */
  days: Array<{ date: string; project: string; amount: number }>;
  resources: ResourceCost[];
  /** Meters used in the period that no price covers (billed as nothing until one does). */
  unpriced: Array<{ meter: MeterName; plan: string }>;
}

const FORECAST_ASSUMPTION =
  'Month to date, plus what runs now — each database with its current plan, storage and state, each stored backup with its size — until the end of the month at the prices in effect now.';

const iso = (t: number) => new Date(t * 1000).toISOString();

/**
 * Cost of an org (or one of its projects) over a billing period, up to now: usage from the ledger
 * priced from the price book, line by line, each line rounded once; and a forecast to the end of
 * the period. Nothing is estimated for missing time; it is reported as missing.
 */
export async function costReport(
  deps: { pool: pg.Pool; ledger: UsageLedger; prices: PriceBook },
  scope: { org: string; project?: string },
  period: BillingPeriod,
  now: number,
  /** days: false leaves the daily series out (closing a month, usage, budgets need only the lines). */
  options: { days?: boolean } = {},
): Promise<CostReport> {
  const asOf = Math.max(period.from, Math.min(Math.floor(now), period.to));
  const prices = await deps.prices.list();
  const changes = prices.map((p) => p.effectiveFrom).filter((t) => t > period.from && t < period.to);
  const boundaries = [...new Set([period.from, ...changes, period.to])].sort((a, b) => a - b);
  const [totals, resources, daily] = await Promise.all([
    deps.ledger.totals(scope, boundaries),
    deps.ledger.resources(scope, period.from, period.to),
    options.days === false ? [] : deps.ledger.days(scope, boundaries, period.timeZone),
  ]);
  const currency = prices[0]?.currency;
  const unpriced = new Map<string, { meter: MeterName; plan: string }>();
  const byUid = new Map<string, ResourceCost>();
  for (const r of resources) {
    const lived = Math.max(0, Math.min(r.deletedAt ?? asOf, asOf) - Math.max(r.createdAt, period.from));
    byUid.set(r.uid, {
      uid: r.uid,
      kind: r.kind,
      project: r.project,
      name: r.name,
      deleted: r.deletedAt !== undefined,
      total: 0,
      coverage: { expectedSeconds: lived, observedSeconds: 0, missingSeconds: lived },
      lines: [],
    });
  }
  for (const t of totals) {
    const resource = byUid.get(t.resourceUid);
    if (!resource) continue;
    const plan = t.dimensions.plan ?? '';
    const price = priceAt(prices, t.meter, plan, boundaries[t.segment]!);
    if (!price) unpriced.set(`${t.meter}|${plan}`, { meter: t.meter, plan });
    const amount = price ? Number(amountOf(t.meter, t.quantity, price.unitPrice)) : 0;
    resource.lines.push({
      meter: t.meter,
      dimensions: t.dimensions,
      from: iso(boundaries[t.segment]!),
      to: iso(boundaries[t.segment + 1]!),
      seconds: t.seconds,
      quantity: t.quantity.toString(),
      unit: METERS[t.meter].unit,
      ...(price ? { unitPrice: formatUnitPrice(price.unitPrice, price.currency) } : {}),
      priceUnit: METERS[t.meter].priceUnit,
      amount,
    });
    resource.total += amount;
    if ((METERS[t.meter] as MeterDefinition).coversLifetime) {
      const c = resource.coverage;
      c.observedSeconds = Math.min(c.expectedSeconds, c.observedSeconds + t.seconds);
      c.missingSeconds = c.expectedSeconds - c.observedSeconds;
    }
  }
  const list = [...byUid.values()];
  const total = list.reduce((sum, r) => sum + r.total, 0);
  const projects = new Map<string, number>();
  for (const r of list) projects.set(r.project, (projects.get(r.project) ?? 0) + r.total);
  const days = new Map<string, { date: string; project: string; amount: number }>();
  for (const d of daily) {
    const price = priceAt(prices, d.meter, d.dimensions.plan ?? '', boundaries[d.segment]!);
    const amount = price ? Number(amountOf(d.meter, d.quantity, price.unitPrice)) : 0;
    const key = `${d.date}|${d.project}`;
    const day = days.get(key) ?? { date: d.date, project: d.project, amount: 0 };
    day.amount += amount;
    days.set(key, day);
  }
  const ahead = await forecastRest(deps.pool, list, prices, asOf, period.to);
  const money = (minor: number) => (currency ? formatMoney(BigInt(minor), currency) : String(minor));
  return {
    org: scope.org,
    ...(scope.project ? { project: scope.project } : {}),
    period: { month: period.month, timeZone: period.timeZone, from: iso(period.from), to: iso(period.to) },
    asOf: iso(asOf),
    ...(currency ? { currency } : {}),
    total,
    totalText: money(total),
    forecast: { total: total + ahead, totalText: money(total + ahead), assumption: FORECAST_ASSUMPTION },
    projects: [...projects].map(([project, sum]) => ({ project, total: sum })),
    days: [...days.values()],
    resources: list,
    unpriced: [...unpriced.values()],
  };
}

/**
 * What the live resources among resources cost from asOf to the period's end as they are now: each
 * database with its current plan, storage and state (storage used is not forecast: it is not
 * known ahead), each stored backup with its size.
 */
async function forecastRest(
  pool: pg.Pool,
  resources: readonly ResourceCost[],
  prices: readonly Price[],
  asOf: number,
  end: number,
): Promise<number> {
  const rest = BigInt(Math.max(0, end - asOf));
  const live = resources.filter((r) => !r.deleted).map((r) => r.uid);
  if (rest === 0n || live.length === 0) return 0;
  const { rows } = await pool.query<{
    kind: string;
    spec: Record<string, unknown>;
    status: Record<string, unknown>;
  }>('SELECT kind, spec, status FROM resources WHERE uid = ANY($1::uuid[]) AND deletion_timestamp IS NULL', [
    live,
  ]);
  let sum = 0n;
  for (const { kind, spec, status } of rows) {
    const rates =
      kind === 'Database' ? forecastDatabase(spec) : kind === 'Backup' ? forecastBackup(status) : [];
    for (const rate of rates) {
      const price = priceAt(prices, rate.meter, rate.dimensions.plan ?? '', asOf);
      if (price) sum += amountOf(rate.meter, rest * BigInt(rate.perSecond), price.unitPrice);
    }
  }
  return Number(sum);
}

function forecastDatabase(spec: Record<string, unknown>) {
  const { engine, plan, storageGB, stopped } = spec as {
    engine: string;
    plan: string;
    storageGB: number;
    stopped?: boolean;
  };
  return databaseRates({ running: !stopped, engine, plan, storageGB });
}

function forecastBackup(status: Record<string, unknown>) {
  const { engine, object } = status as { engine?: string; object?: { size: number } };
  return object ? backupRates({ engine: engine ?? '', bytes: object.size }) : [];
}
