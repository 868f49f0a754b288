import type { Command } from 'commander';
import { table, writeOutput } from '../core/output.js';
import { type Runtime, invocation } from '../core/runtime.js';
import { billingScope, duration, monthQuery } from './cost.js';

interface UsageReport {
  resources: Array<{
    kind: string;
    name: string;
    deleted: boolean;
    coverage: { observedSeconds: number; missingSeconds: number };
    lines: Array<{ meter: string; dimensions: Record<string, string>; quantity: string; unit: string }>;
  }>;
}

/** A quantity of unit-seconds as a person reads it: hours, GB-hours. */
function amount(quantity: string, unit: string): string {
  const q = Number(quantity);
  if (unit === 'second') return `${(q / 3600).toFixed(2)} h`;
  if (unit === 'GB-second') return `${(q / 3600).toFixed(2)} GB-h`;
  return `${(q / 3600 / 1e9).toFixed(3)} GB-h`;
}

/** `kumo usage`: what was metered this month, and what is missing. */
export function registerUsageCommand(program: Command, runtime: Runtime): void {
  program
    .command('usage')
    .description(
      "What was metered for an org (--org) or a project (-p) this month in the org's time zone, per resource and meter, with the time its agent did not report (no money: see kumo cost).",
    )
    .option('--org <org>', 'the whole org')
    .option('--month <YYYY-MM>', 'another month than the current one')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo usage -p shop\n  kumo usage --org acme --month 2026-11 -o json',
    )
    .action(async (o: { org?: string; month?: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const report = await inv.client.request<UsageReport>(
        'GET',
        billingScope(o, inv, 'usage') + monthQuery(o.month),
      );
      writeOutput(runtime.stdout, inv.format, report, () =>
        table(
          ['RESOURCE', 'METER', 'DIMENSIONS', 'USED', 'OBSERVED', 'MISSING'],
          report.resources.flatMap((r) =>
            r.lines.map((l) => [
              `${r.kind === 'Database' ? 'db' : r.kind.toLowerCase()}/${r.name}${r.deleted ? ' (deleted)' : ''}`,
              l.meter,
              Object.entries(l.dimensions)
                .map(([k, v]) => `${k}=${v}`)
                .join(','),
              amount(l.quantity, l.unit),
              duration(r.coverage.observedSeconds),
              r.coverage.missingSeconds ? duration(r.coverage.missingSeconds) : '-',
            ]),
          ),
        ),
      );
    });
}
