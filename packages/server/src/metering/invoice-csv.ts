import type { InvoiceDocument, InvoiceLine } from './invoice.js';
import { formatMoney } from './pricing.js';

/** The columns of invoiceCsv, in order. */
export const INVOICE_CSV_COLUMNS = [
  'number',
  'kind',
  'corrects',
  'org',
  'month',
  'time_zone',
  'line',
  'project',
  'resource',
  'resource_uid',
  'meter',
  'dimensions',
  'from',
  'to',
  'quantity',
  'unit',
  'unit_price',
  'price_unit',
  'amount',
  'currency',
] as const;

type Row = Record<(typeof INVOICE_CSV_COLUMNS)[number], string | number>;
/** The columns every row of a document repeats. */
type DocumentFields = Pick<Row, 'number' | 'kind' | 'corrects' | 'org' | 'month' | 'time_zone' | 'currency'>;

/**
 * An invoice or a credit note as RFC 4180 CSV (UTF-8, no byte order mark, CRLF line ends; serve it
 * as `text/csv; charset=utf-8; header=present`): a header row, one row per line in print order,
 * then a row whose `line` is "total". Every row repeats the document's number, kind, the invoice a
 * credit note corrects (`corrects`, empty on an invoice), org, month and time zone, so a row stands
 * alone when filtered or pasted next to another document's. quantity is in the meter's unit-seconds (`unit`), unit_price in
 * major units per price_unit, amount a decimal in the major unit with every minor digit ("12.30",
 * "-1.50" on a credit note). Pure and deterministic; never throws for a well-formed document.
 */
export function invoiceCsv(doc: InvoiceDocument): string {
  const common: DocumentFields = {
    number: doc.number,
    kind: doc.kind,
    corrects: doc.corrects ?? '',
    org: doc.org,
    month: doc.period.month,
    time_zone: doc.period.timeZone,
    currency: doc.currency,
  };
  const rows: Row[] = doc.lines.map((l) => ({ ...common, ...lineFields(l, doc.currency) }));
  rows.push({
    ...common,
    line: 'total',
    project: '',
    resource: '',
    resource_uid: '',
    meter: '',
    dimensions: '',
    from: doc.period.from,
    to: doc.period.to,
    quantity: '',
    unit: '',
    unit_price: '',
    price_unit: '',
    amount: formatMoney(BigInt(doc.total), doc.currency),
  });
  const records = [INVOICE_CSV_COLUMNS, ...rows.map((r) => INVOICE_CSV_COLUMNS.map((c) => r[c]))];
  return records.map((fields) => fields.map((f) => csvField(String(f))).join(',') + '\r\n').join('');
}

function lineFields(l: InvoiceLine, currency: string): Omit<Row, keyof DocumentFields> {
  return {
    line: l.number,
    project: l.project,
    resource: l.resource,
    resource_uid: l.resourceUid,
    meter: l.meter,
    dimensions: Object.keys(l.dimensions)
      .sort()
      .map((k) => `${k}=${l.dimensions[k]}`)
      .join(';'),
    from: l.from,
    to: l.to,
    quantity: l.quantity,
    unit: l.unit,
    unit_price: l.unitPrice ?? '',
    price_unit: l.priceUnit,
    amount: formatMoney(BigInt(l.amount), currency),
  };
}

/**
 * A spreadsheet runs a cell that starts with one of these as a formula (CSV injection, OWASP):
 * "=cmd|' /C calc'!A0" in an org's or a credit note reason's place must stay text.
 */
const FORMULA_START = /^[=+\-@\t\r]/;
/** A plain decimal such as formatMoney writes ("-1.50"): a spreadsheet reads it as a number. */
const DECIMAL = /^-?\d+(\.\d+)?$/;

/**
 * One field, neutralised then quoted. The guard is decided by the value, not the column: a field
 * that starts like a formula is prefixed with an apostrophe (shown as text, the apostrophe hidden)
 * unless the whole field is a plain decimal — the amounts of a credit note ("-1.50") stay numbers
 * that a spreadsheet can sum, and a decimal cannot run anything whichever column it is in. Every
 * other field that starts like a formula (a name, a reason, "+1", "-1e3", "-1,5") is guarded. A
 * field with a comma, a quote, CR or LF is quoted, its quotes doubled (RFC 4180).
 */
function csvField(value: string): string {
  const safe = FORMULA_START.test(value) && !DECIMAL.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
