import { isDeepStrictEqual } from 'node:util';
import {
  type Budget,
  type BudgetStatus,
  type Condition,
  type Resource,
  WITHIN_BUDGET,
  findCondition,
  removeCondition,
  setCondition,
} from '@kumo/api';
import type pg from 'pg';
import { Periodic } from '../controllers/runtime/periodic.js';
import type { StatusWriter } from '../controllers/runtime/status-writer.js';
import type { Logger } from '../logger.js';
import type { ResourceStore } from '../store/resource-store.js';
import { billingPeriod, costReport } from './cost-report.js';
import type { PriceBook } from './price-book.js';
import { formatMoney, parseUnitPrice, roundHalfEven } from './pricing.js';
import type { UsageLedger } from './usage-ledger.js';

/** How often a control-plane replica checks the budgets. */
const EVERY_MS = 5 * 60_000;
const MICRO = 1_000_000n;

export interface BudgetWatcherDeps {
  pool: pg.Pool;
  ledger: UsageLedger;
  prices: PriceBook;
  store: ResourceStore;
  status: StatusWriter;
  logger: Logger;
}

/**
 * Checks each org's and project's month-to-date cost (the org's month, in its time zone) against
 * its spec.budget: writes the WithinBudget condition and status.budget on the resource that has the
 * budget, and a BudgetThresholdCrossed Warning event when a higher threshold than recorded for the
 * month is crossed. Resources without a budget, or a price book without a price, have neither.
 * Every control-plane replica runs one; each budget's event is emitted at most once (see check).
 */
export class BudgetWatcher {
  private readonly periodic = new Periodic(
    (now) => this.pass(now),
    EVERY_MS,
    (err) => this.deps.logger.warn({ err: String(err) }, 'checking budgets failed; retrying later'),
  );

  constructor(private readonly deps: BudgetWatcherDeps) {}

  start(): void {
    this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** A budget (or what it is checked against) changed: a pass now, not at the next interval. */
  nudge(): void {
    this.periodic.nudge();
  }

  /** One pass over every org and project at epoch second now (one pass at a time); never throws. */
  run(now?: number): Promise<void> {
    return this.periodic.run(now);
  }

  private async pass(now: number): Promise<void> {
    const { store } = this.deps;
    const zones = new Map<string, string>();
    for (const key of await store.keys('Org')) {
      const org = await store.get(key);
      if (!org) continue;
      const timeZone = (org.spec as { timeZone?: string }).timeZone ?? 'UTC';
      zones.set(key.name, timeZone);
      await this.checkLogged(org, { org: key.name }, timeZone, now);
    }
    for (const key of await store.keys('Project')) {
      const project = await store.get(key);
      if (!project) continue;
      const org = (project.spec as { org: string }).org;
      await this.checkLogged(project, { org, project: key.name }, zones.get(org) ?? 'UTC', now);
    }
  }

  private async checkLogged(
    resource: Resource,
    scope: { org: string; project?: string },
    timeZone: string,
    now: number,
  ): Promise<void> {
    await this.check(resource, scope, timeZone, now).catch((err: unknown) =>
      this.deps.logger.warn(
        { kind: resource.kind, name: resource.metadata.name, err: String(err) },
        'checking a budget failed; retrying later',
      ),
    );
  }

  private async check(
    resource: Resource,
    scope: { org: string; project?: string },
    timeZone: string,
    now: number,
  ): Promise<void> {
    if (resource.metadata.deletionTimestamp) return;
    const key = { kind: resource.kind, project: '', name: resource.metadata.name };
    const budget = (resource.spec as { budget?: Budget }).budget;
    const period = billingPeriod(timeZone, now);
    const report = budget ? await costReport(this.deps, scope, period, now, { days: false }) : undefined;
    const currency = report?.currency;
    const limit = budget && currency ? parseUnitPrice(budget.amount, currency) : undefined;
    if (!budget || !report || !currency || !limit) {
      const shown =
        resource.status.budget !== undefined ||
        findCondition(resource.status.conditions as Condition[] | undefined, WITHIN_BUDGET);
      if (shown)
        await this.deps.status.update(key, (current) => {
          const { budget: _gone, ...status } = current.status;
          return { ...status, conditions: removeCondition(status.conditions as Condition[], WITHIN_BUDGET) };
        });
      return;
    }

    // Percentages rounded down; a threshold counts as crossed once cost × 100 ≥ threshold × budget.
    const scaled = (minor: number) => BigInt(minor) * 100n * MICRO;
    const percentOf = (minor: number) => Number(scaled(minor) / limit);
    const percent = percentOf(report.total);
    const forecastPercent = percentOf(report.forecast.total);
    const reached = budget.thresholds.filter((t) => scaled(report.total) >= BigInt(t) * limit);
    const crossedNow = reached.length > 0 ? reached[reached.length - 1]! : 0;
    const money = (minor: bigint) => formatMoney(minor, currency);
    const amountText = money(roundHalfEven(limit, MICRO));
    const spent = `${money(BigInt(report.total))} of ${amountText} ${currency}`;
    const message = `${percent} % of the budget this month (${spent}), forecast ${forecastPercent} %; thresholds ${budget.thresholds.join(', ')}`;

    // The event is decided inside compute, which runs under the resource's row lock: replicas
    // checking at once take turns, and only the one whose write raises the month's `crossed` above
    // what the status held emits. compute may run again if the transaction is retried, so `raised`
    // is reset on each run; the write that commits decides. Within a month and for the same amount
    // `crossed` never goes down, so a replica writing an older, lower figure cannot make the next
    // pass raise (and announce) the same threshold again.
    let raised = false;
    const written = await this.deps.status.update(key, (current) => {
      raised = false;
      // The budget changed since it was read: the next pass checks the new one.
      if (!isDeepStrictEqual((current.spec as { budget?: Budget }).budget, budget)) return current.status;
      const before = current.status.budget as BudgetStatus | undefined;
      const same = before?.month === period.month && before.amount === budget.amount;
      const already = same ? before.crossed : 0;
      raised = crossedNow > already;
      const recorded: BudgetStatus = {
        month: period.month,
        percent,
        crossed: Math.max(crossedNow, already),
        forecastPercent,
        amount: budget.amount,
      };
      return {
        ...current.status,
        budget: recorded,
        conditions: setCondition(
          current.status.conditions as Condition[] | undefined,
          {
            type: WITHIN_BUDGET,
            status: percent < 100 ? 'True' : 'False',
            reason: percent >= 100 ? 'OverBudget' : crossedNow > 0 ? 'ThresholdCrossed' : 'UnderBudget',
            message,
            observedGeneration: current.metadata.generation,
          },
          new Date(now * 1000),
        ),
      };
    });
    if (written && raised)
      await this.deps.status.event(
        written,
        'Warning',
        'BudgetThresholdCrossed',
        `crossed ${crossedNow} % of the budget of ${resource.kind.toLowerCase()} ${resource.metadata.name}: ${spent} this month`,
      );
  }
}
