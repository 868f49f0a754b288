import { writeFile } from 'node:fs/promises';
import { formatMoney } from '@kumo/api';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { table, writeOutput } from '../core/output.js';
import { type Runtime, invocation } from '../core/runtime.js';

const path = encodeURIComponent;

interface Invoice {
  number: string;
  kind: 'invoice' | 'credit-note';
  org: string;
  period: { month: string; timeZone: string };
  issuedAt: string;
  currency: string;
  total: number;
  corrects?: string;
  reason?: string;
  lines: number | Array<{ number: number; description: string; resource: string; amount: number }>;
}

function money(minor: number, currency: string): string {
  return `${formatMoney(minor, currency)} ${currency}`;
}

function requireOrg(o: { org?: string }): string {
  if (!o.org) throw new InvalidArgumentError('Say whose invoices: --org ORG.');
  return o.org;
}

/** `kumo invoice`: an org's invoices and credit notes — list, show, download; operators close and credit. */
export function registerInvoiceCommands(program: Command, runtime: Runtime): void {
  const invoice = program
    .command('invoice')
    .description(
      "An org's invoices and credit notes (owners, admins, billing); issued once a month, never changed.",
    );
  const base = (org: string) => `/v1/orgs/${path(org)}/invoices`;

  invoice
    .command('list')
    .description('The invoices and credit notes of an org, newest first.')
    .requiredOption('--org <org>')
    .addHelpText('after', '\nExamples:\n  kumo invoice list --org acme')
    .action(async (o: { org: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const { items } = await inv.client.request<{ items: Invoice[] }>('GET', base(o.org));
      writeOutput(runtime.stdout, inv.format, items, () =>
        table(
          ['NUMBER', 'KIND', 'MONTH', 'TOTAL', 'ISSUED', 'CORRECTS'],
          items.map((i) => [
            i.number,
            i.kind,
            `${i.period.month} (${i.period.timeZone})`,
            money(i.total, i.currency),
            i.issuedAt,
            i.corrects ?? '-',
          ]),
        ),
      );
    });

  invoice
    .command('get')
    .description('One invoice or credit note with its lines.')
    .argument('<number>', 'e.g. 2027-000001')
    .requiredOption('--org <org>')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo invoice get 2027-000001 --org acme\n  kumo invoice get 2027-000001 --org acme -o json',
    )
    .action(async (number: string, o: { org: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const doc = await inv.client.request<Invoice>('GET', `${base(o.org)}/${path(number)}`);
      const lines = Array.isArray(doc.lines) ? doc.lines : [];
      writeOutput(runtime.stdout, inv.format, doc, () =>
        [
          `${doc.kind === 'invoice' ? 'Invoice' : 'Credit note'} ${doc.number} for org ${doc.org}, ${doc.period.month} (${doc.period.timeZone}), issued ${doc.issuedAt}`,
          ...(doc.corrects ? [`Corrects invoice ${doc.corrects}: ${doc.reason}`] : []),
          '',
          table(
            ['#', 'RESOURCE', 'DESCRIPTION', 'AMOUNT'],
            lines.map((l) => [
              String(l.number),
              l.resource || '-',
              l.description,
              money(l.amount, doc.currency),
            ]),
          ).trimEnd(),
          `Total: ${money(doc.total, doc.currency)}`,
          '',
        ].join('\n'),
      );
    });

  invoice
    .command('download')
    .description('Save an invoice or credit note as PDF (to send to the customer), CSV or JSON.')
    .argument('<number>')
    .requiredOption('--org <org>')
    .addOption(
      new Option('--format <format>', 'the file format').choices(['pdf', 'csv', 'json']).default('pdf'),
    )
    .option('-f, --file <path>', 'write it here (default: <number>.<format>; "-" for standard output)')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo invoice download 2027-000001 --org acme\n  kumo invoice download 2027-000001 --org acme --format csv -f - | column -s, -t',
    )
    .action(async (number: string, o: { org: string; format: string; file?: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const item = `${base(o.org)}/${path(number)}`;
      const res = await inv.client.raw('GET', o.format === 'json' ? item : `${item}/${o.format}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      const target = o.file ?? `${number}.${o.format}`;
      if (target === '-') runtime.stdout.write(bytes);
      else {
        await writeFile(target, bytes);
        runtime.stderr.write(
          `${o.format.toUpperCase()} of ${number} written to ${target} (${bytes.length} bytes)\n`,
        );
      }
    });

  invoice
    .command('close')
    .description(
      "Issue an org's invoice for a month now (operators); Kumo does it by itself an hour after each month ends in the org's time zone.",
    )
    .requiredOption('--org <org>')
    .requiredOption('--month <YYYY-MM>')
    .addHelpText('after', '\nExamples:\n  kumo invoice close --org acme --month 2026-11')
    .action(async (o: { org?: string; month: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const doc = await inv.client.request<Invoice>('POST', `${base(requireOrg(o))}/close`, {
        body: { month: o.month },
      });
      writeOutput(
        runtime.stdout,
        inv.format,
        doc,
        () => `invoice ${doc.number}: ${money(doc.total, doc.currency)}\n`,
      );
    });

  invoice
    .command('credit')
    .description(
      'Issue a credit note against an invoice (operators): corrections are credit notes, never edits.',
    )
    .argument('<number>', 'the invoice it corrects')
    .requiredOption('--org <org>')
    .requiredOption('--amount <amount>', 'in the major unit, e.g. 12.50; at most what is left to credit')
    .requiredOption('--reason <text>', 'printed on the credit note')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo invoice credit 2027-000001 --org acme --amount 12.50 --reason "outage on 3 January"',
    )
    .action(async (number: string, o: { org: string; amount: string; reason: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const note = await inv.client.request<Invoice>('POST', `${base(o.org)}/${path(number)}/credit-notes`, {
        body: { amount: o.amount, reason: o.reason },
      });
      writeOutput(
        runtime.stdout,
        inv.format,
        note,
        () => `credit note ${note.number} for invoice ${number}: ${money(note.total, note.currency)}\n`,
      );
    });
}
