import type pg from 'pg';
import { type BillingPeriod, type CostReport, billingPeriod, costReport } from './cost-report.js';
import type { InvoiceDocument, InvoiceLine } from './invoice.js';
import { METERS } from './meters.js';
import type { PriceBook } from './price-book.js';
import type { UsageLedger } from './usage-ledger.js';

/** Why an invoice operation cannot be done, for the API to say (422, or 404 when not found). */
export class InvoiceRefused extends Error {
  constructor(
    readonly field: string,
    message: string,
    readonly notFound = false,
  ) {
    super(message);
  }
}

/** What an invoice list shows of each document. */
export type InvoiceSummary = Omit<InvoiceDocument, 'lines'> & { lines: number };

/** How long after a month ends its invoice is issued: late reports of its last minutes still count. */
export const CLOSE_GRACE_SECONDS = 3600;

const iso = (t: number) => new Date(t * 1000).toISOString();

/**
 * Invoices and credit notes: each org's month closed once into an immutable document with
 * numbered lines (the store refuses to change one: 009_invoices.sql), numbered without gaps in
 * the order of issue. Closing is idempotent and safe with any number of control-plane replicas:
 * the counter row serialises issuers, and a month already invoiced is returned as it is.
 */
export class InvoiceStore {
  constructor(private readonly deps: { pool: pg.Pool; ledger: UsageLedger; prices: PriceBook }) {}

  /**
   * Closes org's month (period) into its invoice, or returns the one issued before. Undefined when
   * there is nothing to bill: no database of the org existed that month, or no price is set yet.
   */
  async close(org: string, period: BillingPeriod, issuedBy: string): Promise<InvoiceDocument | undefined> {
    const existing = await this.invoiceOf(org, period.month);
    if (existing) return existing;
    const report = await costReport(this.deps, { org }, period, period.to, { days: false });
    if (!report.currency || report.resources.length === 0) return undefined;
    return this.issue(
      (number, issuedAt) => ({
        number,
        kind: 'invoice',
        org,
        period: report.period,
        issuedAt,
        currency: report.currency!,
        total: report.total,
        lines: linesOf(report),
      }),
      { org, month: period.month, issuedBy, onlyOnce: true },
    );
  }

  /** Closes every org's last month whose grace has passed (the closer's periodic run); returns those issued now. */
  async closeDue(now: number, issuedBy = 'system:billing'): Promise<InvoiceDocument[]> {
    const { rows } = await this.deps.pool.query<{ org: string; tz: string | null }>(
      `SELECT DISTINCT m.org, o.spec->>'timeZone' AS tz
         FROM metered_resources m
         LEFT JOIN resources o ON o.kind = 'Org' AND o.project = '' AND o.name = m.org`,
    );
    const issued: InvoiceDocument[] = [];
    for (const { org, tz } of rows) {
      const current = billingPeriod(tz ?? 'UTC', now);
      const last = billingPeriod(tz ?? 'UTC', current.from - 1);
      if (now < last.to + CLOSE_GRACE_SECONDS || (await this.invoiceOf(org, last.month))) continue;
      const invoice = await this.close(org, last, issuedBy);
      if (invoice) issued.push(invoice);
    }
    return issued;
  }

  /**
   * A credit note for amount (minor units, positive) of invoice `number`: at most what the invoice
   * still bills after the credit notes issued for it before.
   */
  async credit(
    org: string,
    number: string,
    amount: number,
    reason: string,
    issuedBy: string,
  ): Promise<InvoiceDocument> {
    const invoice = await this.get(org, number);
    if (!invoice || invoice.kind !== 'invoice')
      throw new InvoiceRefused('number', `Org ${org} has no invoice ${number}.`, true);
    return this.issue(
      (creditNumber, issuedAt) => ({
        number: creditNumber,
        kind: 'credit-note',
        org,
        period: invoice.period,
        issuedAt,
        currency: invoice.currency,
        total: -amount,
        corrects: number,
        reason,
        lines: [
          {
            number: 1,
            description: `Credit for invoice ${number}: ${reason}`,
            project: '',
            resource: '',
            resourceUid: '',
            meter: '',
            dimensions: {},
            from: invoice.period.from,
            to: invoice.period.to,
            quantity: '1',
            unit: 'credit',
            priceUnit: 'credit',
            amount: -amount,
          },
        ],
      }),
      { org, month: invoice.period.month, issuedBy, credit: { of: number, amount, invoiced: invoice.total } },
    );
  }

  async list(org: string): Promise<InvoiceSummary[]> {
    const { rows } = await this.deps.pool.query<{ document: InvoiceDocument }>(
      'SELECT document FROM invoices WHERE org = $1 ORDER BY issued_at DESC, number DESC',
      [org],
    );
    return rows.map(({ document: { lines, ...rest } }) => ({ ...rest, lines: lines.length }));
  }

  async get(org: string, number: string): Promise<InvoiceDocument | undefined> {
    const { rows } = await this.deps.pool.query<{ document: InvoiceDocument }>(
      'SELECT document FROM invoices WHERE org = $1 AND number = $2',
      [org, number],
    );
    return rows[0]?.document;
  }

  private async invoiceOf(org: string, month: string): Promise<InvoiceDocument | undefined> {
    const { rows } = await this.deps.pool.query<{ document: InvoiceDocument }>(
      "SELECT document FROM invoices WHERE org = $1 AND month = $2 AND kind = 'invoice'",
      [org, month],
    );
    return rows[0]?.document;
  }

  /** Takes the next number and stores the document, in one transaction (gapless, serialised). */
  private async issue(
    make: (number: string, issuedAt: string) => InvoiceDocument,
    at: {
      org: string;
      month: string;
      issuedBy: string;
      onlyOnce?: boolean;
      credit?: { of: string; amount: number; invoiced: number };
    },
  ): Promise<InvoiceDocument> {
    const client = await this.deps.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ value: string; now: string }>(
        'SELECT value, extract(epoch FROM now())::bigint AS now FROM invoice_counter FOR UPDATE',
      );
      if (at.onlyOnce) {
        // Another replica may have issued it while this one computed it: that one stands.
        const { rows: issued } = await client.query<{ document: InvoiceDocument }>(
          "SELECT document FROM invoices WHERE org = $1 AND month = $2 AND kind = 'invoice'",
          [at.org, at.month],
        );
        if (issued[0]) {
          await client.query('ROLLBACK');
          return issued[0].document;
        }
      }
      if (at.credit) {
        const { rows: credited } = await client.query<{ sum: string | null }>(
          "SELECT sum(-total) AS sum FROM invoices WHERE kind = 'credit-note' AND corrects = $1",
          [at.credit.of],
        );
        const left = at.credit.invoiced - Number(credited[0]?.sum ?? 0);
        if (at.credit.amount > left)
          throw new InvoiceRefused(
            'amount',
            `Invoice ${at.credit.of} has ${left} (minor units) left to credit; a credit note cannot exceed it.`,
          );
      }
      const value = Number(rows[0]!.value) + 1;
      const issuedAt = iso(Number(rows[0]!.now));
      const number = `${issuedAt.slice(0, 4)}-${String(value).padStart(6, '0')}`;
      const doc = make(number, issuedAt);
      await client.query('UPDATE invoice_counter SET value = $1', [value]);
      await client.query(
        `INSERT INTO invoices (number, kind, org, month, time_zone, period_from, period_to, currency, total,
                               corrects, reason, issued_at, issued_by, document)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
        [
          doc.number,
          doc.kind,
          doc.org,
          doc.period.month,
          doc.period.timeZone,
          doc.period.from,
          doc.period.to,
          doc.currency,
          doc.total,
          doc.corrects ?? null,
          doc.reason ?? null,
          doc.issuedAt,
          at.issuedBy,
          JSON.stringify(doc),
        ],
      );
      await client.query('COMMIT');
      return doc;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

/** The report's lines, numbered in print order: by project, resource, meter and time. */
function linesOf(report: CostReport): InvoiceLine[] {
  const lines = report.resources.flatMap((r) =>
    r.lines.map((l) => ({
      description: `${METERS[l.meter].description}${l.dimensions.plan ? ` (plan ${l.dimensions.plan})` : ''}`,
      project: r.project,
      resource: `${r.kind === 'Database' ? 'db' : r.kind.toLowerCase()}/${r.name}`,
      resourceUid: r.uid,
      meter: l.meter,
      dimensions: l.dimensions,
      from: l.from,
      to: l.to,
      quantity: l.quantity,
      unit: l.unit,
      ...(l.unitPrice ? { unitPrice: l.unitPrice } : {}),
      priceUnit: l.priceUnit,
      amount: l.amount,
    })),
  );
  lines.sort(
    (a, b) =>
      a.project.localeCompare(b.project) ||
      a.resource.localeCompare(b.resource) ||
      a.meter.localeCompare(b.meter) ||
      a.from.localeCompare(b.from) ||
      JSON.stringify(a.dimensions).localeCompare(JSON.stringify(b.dimensions)),
  );
  return lines.map((l, i) => ({ number: i + 1, ...l }));
}
