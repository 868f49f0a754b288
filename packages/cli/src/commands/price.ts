import type { Command } from 'commander';
import { table, writeOutput } from '../core/output.js';
import { type Runtime, invocation } from '../core/runtime.js';

interface Price {
  meter: string;
  plan: string;
  currency: string;
  unitPrice: string;
  priceUnit: string;
  effectiveFrom: string;
  createdBy: string;
}

/** `kumo price`: the price book (everyone reads it; operators add prices). */
export function registerPriceCommands(program: Command, runtime: Runtime): void {
  const price = program.command('price').description('The price book: what each meter costs, from when.');
  price
    .command('list')
    .description('Every price, past and future.')
    .addHelpText('after', '\nExamples:\n  kumo price list\n  kumo price list -o json')
    .action(async (_o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const { items } = await inv.client.request<{ items: Price[] }>('GET', '/v1/billing/prices');
      writeOutput(runtime.stdout, inv.format, items, () =>
        table(
          ['METER', 'PLAN', 'PRICE', 'PER', 'FROM', 'BY'],
          items.map((p) => [
            p.meter,
            p.plan || '*',
            `${p.unitPrice} ${p.currency}`,
            p.priceUnit,
            p.effectiveFrom,
            p.createdBy,
          ]),
        ),
      );
    });
  price
    .command('set')
    .description(
      'Add a price (operators), from now (the current quarter-hour) or from a later quarter-hour; prices are never edited or backdated.',
    )
    .argument(
      '<meter>',
      'database.runtime (per hour), database.storage, database.storage-used or backup.storage (per GB-month)',
    )
    .argument('<amount>', 'in the major unit, e.g. 0.0137')
    .requiredOption('--currency <code>', 'ISO 4217, e.g. EUR (one for the whole price book)')
    .option('--plan <plan>', 'only this plan (database.runtime); default: every plan')
    .option('--from <time>', 'ISO 8601 on a quarter-hour, e.g. 2027-01-01T00:00:00Z')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo price set database.runtime 0.0137 --currency EUR --plan small\n  kumo price set database.storage 0.10 --currency EUR --from 2027-01-01T00:00:00Z',
    )
    .action(
      async (
        meter: string,
        amount: string,
        o: { currency: string; plan?: string; from?: string },
        cmd: Command,
      ) => {
        const inv = await invocation(runtime, cmd);
        const added = await inv.client.request<Price>('POST', '/v1/billing/prices', {
          body: {
            meter,
            unitPrice: amount,
            currency: o.currency,
            ...(o.plan ? { plan: o.plan } : {}),
            ...(o.from ? { effectiveFrom: o.from } : {}),
          },
        });
        writeOutput(
          runtime.stdout,
          inv.format,
          added,
          () =>
            `price of ${added.meter}${added.plan ? ` (plan ${added.plan})` : ''}: ${added.unitPrice} ${added.currency} per ${added.priceUnit} from ${added.effectiveFrom}\n`,
        );
      },
    );
}
