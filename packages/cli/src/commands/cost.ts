import { formatMoney } from '@kumo/api';
import { type Command, InvalidArgumentError } from 'commander';
import { table, writeOutput } from '../core/output.js';
import { type Invocation, type Runtime, invocation } from '../core/runtime.js';

const path = encodeURIComponent;

/** The org (--org) or project (-p, or the context's) a billing command is about, as an API path. */
export function billingScope(o: { org?: string }, inv: Invocation, what: 'cost' | 'usage'): string {
  if (o.org) return `/v1/orgs/${path(o.org)}/${what}`;
  if (inv.project) return `/v1/projects/${path(inv.project)}/${what}`;
  throw new InvalidArgumentError(`Say whose ${what}: --org ORG or -p PROJECT.`);
}

export function monthQuery(month: string | undefined): string {
  return month ? `?month=${path(month)}` : '';
}

/** Seconds as a person reads a duration: "3h 5m", "42s". */
export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h ? `${h}h ${m}m` : `${m}m`;
}

interface CostReport {
  org: string;
  project?: string;
  period: { month: string; timeZone: string };
  asOf: string;
  currency?: string;
  totalText: string;
  forecast: { totalText: string; assumption: string };
  projects: Array<{ project: string; total: number }>;
  resources: Array<{
    kind: string;
    project: string;
    name: string;
    deleted: boolean;
    total: number;
    coverage: { missingSeconds: number };
  }>;
  unpriced: Array<{ meter: string; plan: string }>;
}

/** `kumo cost`: month-to-date cost and the forecast, per project and per resource. */
export function registerCostCommand(program: Command, runtime: Runtime): void {
  program
    .command('cost')
    .description(
      "Cost of an org (--org) or a project (-p) this month in the org's time zone: to date, a forecast to the month's end, per project and per resource (owners, admins, billing).",
    )
    .option('--org <org>', 'the whole org')
    .option('--month <YYYY-MM>', 'another month than the current one')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo cost --org acme\n  kumo cost -p shop --month 2026-11 -o json\n\nTime its agent did not report is billed as nothing and shown as MISSING (docs/billing.md).',
    )
    .action(async (o: { org?: string; month?: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const report = await inv.client.request<CostReport>(
        'GET',
        billingScope(o, inv, 'cost') + monthQuery(o.month),
      );
      writeOutput(runtime.stdout, inv.format, report, () => costText(report));
    });
}

function costText(r: CostReport): string {
  const currency = r.currency ?? '(no prices yet)';
  const money = (minor: number) => (r.currency ? formatMoney(minor, r.currency) : String(minor));
  const head = [
    `${r.project ? `Project ${r.project} (org ${r.org})` : `Org ${r.org}`}, ${r.period.month} (${r.period.timeZone}), as of ${r.asOf}`,
    `To date:   ${r.totalText} ${currency}`,
    `Forecast:  ${r.forecast.totalText} ${currency}  (${r.forecast.assumption})`,
    ...(r.unpriced.length
      ? [
          `Not priced (billed as nothing): ${r.unpriced.map((u) => u.meter + (u.plan ? ` plan ${u.plan}` : '')).join(', ')}`,
        ]
      : []),
    '',
  ].join('\n');
  const resources = table(
    ['RESOURCE', 'PROJECT', 'TOTAL', 'MISSING'],
    r.resources.map((x) => [
      `${x.kind.toLowerCase() === 'database' ? 'db' : x.kind.toLowerCase()}/${x.name}${x.deleted ? ' (deleted)' : ''}`,
      x.project,
      money(x.total),
      x.coverage.missingSeconds ? duration(x.coverage.missingSeconds) : '-',
    ]),
  );
  return `${head}\n${resources}`;
}
