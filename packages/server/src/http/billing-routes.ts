import { nameSchema, problemSchema } from '@kumo/api';
import type pg from 'pg';
import { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { type BillingPeriod, billingPeriod, costReport } from '../metering/cost-report.js';
import {
  INTERVAL_SECONDS,
  METER_NAMES,
  METERS,
  type MeterDefinition,
  type MeterName,
} from '../metering/meters.js';
import { type PriceBook, PriceRefused } from '../metering/price-book.js';
import { invoiceCsv } from '../metering/invoice-csv.js';
import { invoicePdf } from '../metering/invoice-pdf.js';
import { CLOSE_GRACE_SECONDS, type InvoiceStore, InvoiceRefused } from '../metering/invoice-store.js';
import { formatUnitPrice, minorDigits, parseUnitPrice } from '../metering/pricing.js';
import type { UsageLedger } from '../metering/usage-ledger.js';
import { orgOfProject, platformResourceExists } from '../store/resource-rows.js';
import { type AppContext, type KumoRouter, validated } from './router.js';

export interface BillingRouteDeps {
  pool: pg.Pool;
  ledger: UsageLedger;
  prices: PriceBook;
  invoices: InvoiceStore;
}

const problems = {
  403: { description: 'Not allowed', content: { 'application/problem+json': { schema: problemSchema } } },
  404: { description: 'Not found', content: { 'application/problem+json': { schema: problemSchema } } },
  422: { description: 'Invalid', content: { 'application/problem+json': { schema: problemSchema } } },
};
const json = <S extends z.ZodType>(description: string, schema: S) => ({
  description,
  content: { 'application/json': { schema } },
});

const priceSchema = z
  .object({
    id: z.number(),
    meter: z.string(),
    plan: z.string().meta({ description: '"" for every plan.' }),
    currency: z.string(),
    unitPrice: z.string().meta({ description: 'In the major unit per priceUnit, e.g. "0.0137".' }),
    priceUnit: z.string(),
    effectiveFrom: z.string(),
    createdAt: z.string(),
    createdBy: z.string(),
  })
  .meta({ id: 'Price' });
const newPriceSchema = z
  .strictObject({
    meter: z.enum(METER_NAMES as [MeterName, ...MeterName[]]),
    plan: z
      .string()
      .max(40)
      .default('')
      .meta({ description: 'A plan of database.runtime; "" for every plan.' }),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/)
      .meta({ description: 'ISO 4217, e.g. "EUR"; one currency for the whole price book.' }),
    unitPrice: z.string().meta({
      description:
        'Per price unit (hour for database.runtime, GB-month for storage), in the major unit: "0.0137".',
    }),
    effectiveFrom: z.iso
      .datetime({ offset: true })
      .optional()
      .meta({ description: 'On a quarter-hour, from now on; default: the current quarter-hour.' }),
  })
  .meta({ id: 'NewPrice' });
const monthQuery = z.object({
  month: z
    .string()
    .regex(/^\d{4}-\d{2}$/)
    .optional()
    .meta({ description: 'YYYY-MM in the org’s time zone; default: the current month.' }),
});
const costSchema = z.record(z.string(), z.unknown()).meta({
  id: 'CostReport',
  description: 'Month-to-date cost, forecast, per project and per resource with its lines (docs/billing.md).',
});

/**
 * The price book (operators set prices; every signed-in caller may read them), and each org's and
 * project's usage and cost for a month in the org's time zone (docs/billing.md).
 */
export function registerBillingRoutes(router: KumoRouter, deps: BillingRouteDeps): void {
  const price = (p: Awaited<ReturnType<PriceBook['list']>>[number]) => ({
    id: p.id,
    meter: p.meter,
    plan: p.plan,
    currency: p.currency,
    unitPrice: formatUnitPrice(p.unitPrice, p.currency),
    priceUnit: METERS[p.meter].priceUnit,
    effectiveFrom: new Date(p.effectiveFrom * 1000).toISOString(),
    createdAt: new Date(p.createdAt * 1000).toISOString(),
    createdBy: p.createdBy,
  });
  router.add({
    method: 'get',
    path: '/v1/billing/prices',
    tags: ['Billing'],
    summary: 'The price book: every price, past and future',
    access: { authenticated: 'prices are what every customer pays; they are not secret' },
    responses: { 200: json('Prices', z.object({ items: z.array(priceSchema) })), ...problems },
    handler: async (c) => c.json({ items: (await deps.prices.list()).map(price) }),
  });
  router.add({
    method: 'post',
    path: '/v1/billing/prices',
    tags: ['Billing'],
    summary: 'Adds a price taking effect now or later (operators); prices are never edited',
    access: { operator: true },
    request: { body: { content: { 'application/json': { schema: newPriceSchema } }, required: true } },
    responses: { 201: json('Added', priceSchema), 409: problems[404], ...problems },
    handler: async (c) => {
      const b = validated<z.infer<typeof newPriceSchema>>(c, 'json');
      const field = (name: string, message: string) =>
        new ValidationError(message, [{ field: name, message }]);
      if (b.plan && !(METERS[b.meter] as MeterDefinition).priceDimension)
        throw field('plan', `${b.meter} has no plans: leave plan out.`);
      const unitPrice = parseUnitPrice(b.unitPrice, b.currency);
      if (unitPrice === undefined)
        throw field(
          'unitPrice',
          `"${b.unitPrice}" is not an amount of ${b.currency}: a decimal such as "0.0137", at most six digits finer than its smallest unit.`,
        );
      const effectiveFrom = b.effectiveFrom
        ? Date.parse(b.effectiveFrom) / 1000
        : Math.floor(Date.now() / 1000 / INTERVAL_SECONDS) * INTERVAL_SECONDS;
      if (effectiveFrom % INTERVAL_SECONDS !== 0)
        throw field(
          'effectiveFrom',
          'A price takes effect on a quarter-hour (00, 15, 30 or 45 minutes, 0 seconds).',
        );
      const principal = c.get('principal');
      try {
        const added = await deps.prices.add({
          meter: b.meter,
          plan: b.plan,
          currency: b.currency,
          unitPrice,
          effectiveFrom,
          createdBy: principal?.id ?? 'unknown',
        });
        const listed = (await deps.prices.list()).find((p) => p.id === added.id)!;
        return c.json(price(listed), 201);
      } catch (err) {
        if (err instanceof PriceRefused)
          throw err.conflict ? new ConflictError(err.message) : field(err.field, err.message);
        throw err;
      }
    },
  });

  registerInvoiceRoutes(router, deps);

  for (const scope of ['org', 'project'] as const) {
    const base = scope === 'org' ? '/v1/orgs/{org}' : '/v1/projects/{project}';
    const params = scope === 'org' ? z.object({ org: nameSchema }) : z.object({ project: nameSchema });
    const where = scope === 'org' ? { orgParam: 'org' } : { projectParam: 'project' };
    /** The org and project the path names, and the month asked for in the org's time zone. */
    const resolve = async (
      c: AppContext,
    ): Promise<{ org: string; project?: string; period: BillingPeriod }> => {
      const name = validated<{ org?: string; project?: string }>(c, 'param')[scope]!;
      const { month } = validated<{ month?: string }>(c, 'query');
      const org = scope === 'org' ? name : await orgOfProject(deps.pool, name);
      if (!org || !(scope === 'project' || (await platformResourceExists(deps.pool, 'Org', org))))
        throw new NotFoundError(`${scope === 'org' ? 'Org' : 'Project'} "${name}" does not exist.`);
      const period = billingPeriod(await timeZoneOf(deps.pool, org), Math.floor(Date.now() / 1000), month);
      return { org, ...(scope === 'project' ? { project: name } : {}), period };
    };
    router.add({
      method: 'get',
      path: `${base}/cost`,
      tags: ['Billing'],
      summary: `The ${scope}'s cost this month (or another): to date, forecast, per project and resource`,
      access: { permission: 'costs.read', in: where },
      request: { params, query: monthQuery },
      responses: { 200: json('Cost', costSchema), ...problems },
      handler: async (c) => {
        const { period, ...at } = await resolve(c);
        return c.json(await costReport(deps, at, period, Math.floor(Date.now() / 1000)));
      },
    });
    router.add({
      method: 'get',
      path: `${base}/usage`,
      tags: ['Billing'],
      summary: `The ${scope}'s metered usage this month (or another), with what is missing; no money`,
      access: { permission: 'usage.read', in: where },
      request: { params, query: monthQuery },
      responses: { 200: json('Usage', costSchema), ...problems },
      handler: async (c) => {
        const { period, ...at } = await resolve(c);
        const report = await costReport(deps, at, period, Math.floor(Date.now() / 1000), { days: false });
        return c.json({
          org: report.org,
          ...(report.project ? { project: report.project } : {}),
          period: report.period,
          asOf: report.asOf,
          resources: report.resources.map((r) => ({
            uid: r.uid,
            kind: r.kind,
            project: r.project,
            name: r.name,
            deleted: r.deleted,
            coverage: r.coverage,
            lines: r.lines.map(({ meter, dimensions, from, to, seconds, quantity, unit }) => ({
              meter,
              dimensions,
              from,
              to,
              seconds,
              quantity,
              unit,
            })),
          })),
        });
      },
    });
  }
}

/** Invoices and credit notes of an org: read by invoices.read, issued and corrected by operators. */
function registerInvoiceRoutes(router: KumoRouter, deps: BillingRouteDeps): void {
  const tags = ['Billing'];
  const params = z.object({ org: nameSchema });
  // Any text: one that is no invoice number (e.g. GET …/invoices/close) is an invoice that is not there.
  const one = z.object({ org: nameSchema, number: z.string().max(100) });
  const access = { permission: 'invoices.read', in: { orgParam: 'org' } } as const;
  const documentSchema = z.record(z.string(), z.unknown()).meta({ id: 'Invoice' });
  const found = async (c: AppContext) => {
    const { org, number } = validated<{ org: string; number: string }>(c, 'param');
    const invoice = /^\d{4}-\d{6}$/.test(number) ? await deps.invoices.get(org, number) : undefined;
    if (!invoice)
      throw new NotFoundError(`Org ${org} has no invoice ${number} (numbers look like 2027-000001).`);
    return invoice;
  };
  router.add({
    method: 'get',
    path: '/v1/orgs/{org}/invoices',
    tags,
    summary: "The org's invoices and credit notes, newest first",
    access,
    request: { params },
    responses: { 200: json('Invoices', z.object({ items: z.array(documentSchema) })), ...problems },
    handler: async (c) => {
      const { org } = validated<{ org: string }>(c, 'param');
      if (!(await platformResourceExists(deps.pool, 'Org', org)))
        throw new NotFoundError(`Org "${org}" does not exist.`);
      return c.json({ items: await deps.invoices.list(org) });
    },
  });
  router.add({
    method: 'get',
    path: '/v1/orgs/{org}/invoices/{number}',
    tags,
    summary: 'One invoice or credit note with its numbered lines (JSON)',
    access,
    request: { params: one },
    responses: { 200: json('The invoice', documentSchema), ...problems },
    handler: async (c) => c.json(await found(c)),
  });
  router.add({
    method: 'get',
    path: '/v1/orgs/{org}/invoices/{number}/csv',
    tags,
    summary: 'One invoice or credit note as CSV (RFC 4180)',
    access,
    request: { params: one },
    responses: { 200: { description: 'CSV', content: { 'text/csv': { schema: z.string() } } }, ...problems },
    handler: async (c) => {
      const invoice = await found(c);
      return new Response(invoiceCsv(invoice), {
        headers: {
          'content-type': 'text/csv; charset=utf-8',
          'content-disposition': `attachment; filename="${invoice.number}.csv"`,
        },
      });
    },
  });
  router.add({
    method: 'get',
    path: '/v1/orgs/{org}/invoices/{number}/pdf',
    tags,
    summary: 'One invoice or credit note as a PDF to send to the customer',
    access,
    request: { params: one },
    responses: {
      200: { description: 'PDF', content: { 'application/pdf': { schema: z.string() } } },
      ...problems,
    },
    handler: async (c) => {
      const invoice = await found(c);
      return new Response(Buffer.from(await invoicePdf(invoice)), {
        headers: {
          'content-type': 'application/pdf',
          'content-disposition': `attachment; filename="${invoice.number}.pdf"`,
        },
      });
    },
  });
  router.add({
    method: 'post',
    path: '/v1/orgs/{org}/invoices/close',
    tags,
    summary:
      "Closes a month into the org's invoice now (operators); the closer does it an hour after each month",
    access: { operator: true },
    request: {
      params,
      body: {
        content: {
          'application/json': { schema: z.strictObject({ month: z.string().regex(/^\d{4}-\d{2}$/) }) },
        },
        required: true,
      },
    },
    responses: { 200: json('The invoice (issued now or before)', documentSchema), ...problems },
    handler: async (c) => {
      const { org } = validated<{ org: string }>(c, 'param');
      const { month } = validated<{ month: string }>(c, 'json');
      const period = billingPeriod(await timeZoneOf(deps.pool, org), Math.floor(Date.now() / 1000), month);
      const field = (message: string) => new ValidationError(message, [{ field: 'month', message }]);
      if (Date.now() / 1000 < period.to + CLOSE_GRACE_SECONDS)
        throw field(
          `${month} (${period.timeZone}) is not over, or ended less than an hour ago: an invoice is closed after its month and the grace hour for late reports.`,
        );
      const invoice = await deps.invoices.close(org, period, c.get('principal')?.id ?? 'unknown');
      if (!invoice)
        throw field(
          `Nothing to invoice for ${month}: no database of org ${org} existed then, or no price is set.`,
        );
      return c.json(invoice);
    },
  });
  router.add({
    method: 'post',
    path: '/v1/orgs/{org}/invoices/{number}/credit-notes',
    tags,
    summary: 'Issues a credit note against an invoice (operators): corrections are credit notes, never edits',
    access: { operator: true },
    request: {
      params: one,
      body: {
        content: {
          'application/json': {
            schema: z.strictObject({
              amount: z
                .string()
                .meta({ description: 'In the major unit, e.g. "12.50"; at most what is left to credit.' }),
              reason: z.string().min(1).max(500),
            }),
          },
        },
        required: true,
      },
    },
    responses: { 201: json('The credit note', documentSchema), ...problems },
    handler: async (c) => {
      const { org, number } = validated<{ org: string; number: string }>(c, 'param');
      const b = validated<{ amount: string; reason: string }>(c, 'json');
      const invoice = await found(c);
      const digits = minorDigits(invoice.currency);
      const micro = parseUnitPrice(b.amount, invoice.currency);
      const scale = 10n ** 6n;
      if (micro === undefined || micro % scale !== 0n || micro === 0n)
        throw new ValidationError(
          `"${b.amount}" is not a positive amount of ${invoice.currency} (at most ${digits} decimals).`,
          [{ field: 'amount', message: `a positive amount with at most ${digits} decimals` }],
        );
      try {
        const note = await deps.invoices.credit(
          org,
          number,
          Number(micro / scale),
          b.reason,
          c.get('principal')?.id ?? 'unknown',
        );
        return c.json(note, 201);
      } catch (err) {
        if (err instanceof InvoiceRefused)
          throw err.notFound
            ? new NotFoundError(err.message)
            : new ValidationError(err.message, [{ field: err.field, message: err.message }]);
        throw err;
      }
    },
  });
}

/** The org's billing time zone (spec.timeZone), UTC when it has none. */
async function timeZoneOf(pool: pg.Pool, org: string): Promise<string> {
  const { rows } = await pool.query<{ tz: string | null }>(
    "SELECT spec->>'timeZone' AS tz FROM resources WHERE kind = 'Org' AND project = '' AND name = $1",
    [org],
  );
  return rows[0]?.tz ?? 'UTC';
}
