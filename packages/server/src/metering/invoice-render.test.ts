import { PDFDocument } from 'pdf-lib';
import { PDFParse } from 'pdf-parse';
import { describe, expect, it } from 'vitest';
import type { InvoiceDocument, InvoiceLine } from './invoice.js';
import { INVOICE_CSV_COLUMNS, invoiceCsv } from './invoice-csv.js';
import { invoicePdf } from './invoice-pdf.js';

const PERIOD = {
  month: '2026-03',
  timeZone: 'Europe/Berlin',
  from: '2026-02-28T23:00:00.000Z',
  to: '2026-03-31T22:00:00.000Z',
};

const line = (number: number, over: Partial<InvoiceLine> = {}): InvoiceLine => ({
  number,
  description: 'Seconds the server ran, per plan (plan small)',
  project: 'shop',
  resource: `db/orders-${number}`,
  resourceUid: `0b6f3c1e-0000-4000-8000-${String(number).padStart(12, '0')}`,
  meter: 'database.runtime',
  dimensions: { plan: 'small', engine: 'postgres' },
  from: PERIOD.from,
  to: PERIOD.to,
  quantity: '2674800',
  unit: 'second',
  unitPrice: '0.0137',
  priceUnit: 'hour',
  amount: 1018,
  ...over,
});

const invoice = (lines: InvoiceLine[], over: Partial<InvoiceDocument> = {}): InvoiceDocument => ({
  number: '2026-000042',
  kind: 'invoice',
  org: 'acme',
  period: PERIOD,
  issuedAt: '2026-04-01T01:00:00.000Z',
  currency: 'EUR',
  total: lines.reduce((sum, l) => sum + l.amount, 0),
  lines,
  ...over,
});

const SAMPLE = invoice([
  line(1, { resource: 'db/orders' }),
  line(2, {
    resource: 'db/orders',
    description: 'Provisioned storage (spec.storageGB) while the database exists, running or stopped',
    meter: 'database.storage',
    dimensions: {},
    quantity: '26748000',
    unit: 'GB-second',
    unitPrice: '0.10',
    priceUnit: 'GB-month',
    amount: 102,
  }),
  line(3, {
    resource: 'db/"quoted", name',
    description: 'Storage the server actually used, as last measured by its agent',
    meter: 'database.storage-used',
    dimensions: {},
    from: '2026-03-15T11:00:00.000Z',
    quantity: '1500000000000',
    unit: 'byte-second',
    unitPrice: undefined,
    priceUnit: 'GB-month',
    amount: 0,
  }),
]);

const CREDIT_NOTE: InvoiceDocument = {
  number: '2026-000043',
  kind: 'credit-note',
  org: 'acme',
  period: PERIOD,
  issuedAt: '2026-04-03T09:30:00.000Z',
  currency: 'EUR',
  total: -150,
  corrects: '2026-000042',
  reason: 'Outage on 12 March, see "incident 7"',
  lines: [
    {
      number: 1,
      description: 'Credit for invoice 2026-000042: Outage on 12 March, see "incident 7"',
      project: '',
      resource: '',
      resourceUid: '',
      meter: '',
      dimensions: {},
      from: PERIOD.from,
      to: PERIOD.to,
      quantity: '1',
      unit: 'credit',
      priceUnit: 'credit',
      amount: -150,
    },
  ],
};

/** A strict RFC 4180 reader: CRLF-terminated records, quoted fields with doubled quotes. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let i = 0;
  while (i < text.length) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted field');
        if (text[i] === '"' && text[i + 1] === '"') {
          field += '"';
          i += 2;
        } else if (text[i] === '"') break;
        else field += text[i++];
      }
      i++;
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r') {
        if (text[i] === '"' || text[i] === '\n') throw new Error(`bare ${JSON.stringify(text[i])} at ${i}`);
        field += text[i++];
      }
    }
    record.push(field);
    if (text[i] === ',') i++;
    else if (text.startsWith('\r\n', i)) {
      records.push(record);
      record = [];
      i += 2;
    } else throw new Error(`expected a comma or CRLF at ${i}`);
  }
  if (record.length) throw new Error('the last record has no CRLF');
  return records;
}

const rowsOf = (doc: InvoiceDocument) => {
  const [head, ...rows] = parseCsv(invoiceCsv(doc));
  expect(head).toEqual([...INVOICE_CSV_COLUMNS]);
  return rows.map((r) => Object.fromEntries(head!.map((c, i) => [c, r[i]])));
};

/** The text of every page, as a reader extracts it. */
async function pdfPages(bytes: Uint8Array): Promise<string[]> {
  const parser = new PDFParse({ data: bytes.slice() });
  try {
    return (await parser.getText()).pages.map((p) => p.text);
  } finally {
    await parser.destroy();
  }
}

const pdfText = async (bytes: Uint8Array) => (await pdfPages(bytes)).join('\n');

describe('invoiceCsv', () => {
  it('has a row per line and a total row that a strict RFC 4180 reader reads back', () => {
    const csv = invoiceCsv(SAMPLE);
    expect(csv.endsWith('\r\n')).toBe(true);
    const rows = rowsOf(SAMPLE);
    expect(rows).toHaveLength(SAMPLE.lines.length + 1);
    expect(rows.every((r) => Object.keys(r).length === INVOICE_CSV_COLUMNS.length)).toBe(true);
    expect(rows.map((r) => r.line)).toEqual(['1', '2', '3', 'total']);
    expect(rows.every((r) => r.number === '2026-000042' && r.org === 'acme' && r.currency === 'EUR')).toBe(
      true,
    );
    expect(rows[2]!.resource).toBe('db/"quoted", name');
    expect(rows[0]!.dimensions).toBe('engine=postgres;plan=small');
    expect(rows[0]).toMatchObject({
      quantity: '2674800',
      unit: 'second',
      unit_price: '0.0137',
      price_unit: 'hour',
    });
    expect(rows[2]!.unit_price).toBe('');
  });

  it('writes amounts as decimals in the major unit, the total the sum of the lines', () => {
    const rows = rowsOf(SAMPLE);
    expect(rows.map((r) => r.amount)).toEqual(['10.18', '1.02', '0.00', '11.20']);
    const cents = (s: string) => Math.round(Number(s) * 100);
    const lines = rows.filter((r) => r.line !== 'total');
    expect(cents(rows.at(-1)!.amount!)).toBe(lines.reduce((sum, r) => sum + cents(r.amount!), 0));
  });

  it('writes a credit note with the invoice it corrects and negative amounts that stay numbers', () => {
    const rows = rowsOf(CREDIT_NOTE);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ kind: 'credit-note', corrects: '2026-000042', amount: '-1.50' });
    expect(rows[1]).toMatchObject({ line: 'total', amount: '-1.50' });
  });

  it.each([
    { name: "=cmd|' /C calc'!A0", reason: 'the DDE payload of the OWASP page' },
    { name: '+1+cmd', reason: 'a plus starts a formula' },
    { name: '-1+cmd', reason: 'a minus starts a formula when the rest is not a plain decimal' },
    { name: '@SUM(A1)', reason: 'an at sign starts a function' },
    { name: '\tx', reason: 'a leading tab' },
    { name: '\r=1', reason: 'a leading carriage return' },
  ])('neutralises a name like $name: $reason', ({ name }) => {
    const rows = rowsOf(invoice([line(1, { resource: name, project: name })], { org: name }));
    for (const r of rows) expect(r.org).toBe(`'${name}`);
    expect(rows[0]).toMatchObject({ resource: `'${name}`, project: `'${name}` });
  });

  it('leaves plain text and plain decimals alone', () => {
    const rows = rowsOf(invoice([line(1, { resource: 'db/a=b', amount: -150 })]));
    expect(rows[0]).toMatchObject({ resource: 'db/a=b', amount: '-1.50' });
  });
});

describe('invoicePdf', () => {
  it('renders a short invoice on one A4 page with its number, lines and total', async () => {
    const bytes = await invoicePdf(SAMPLE, {
      name: 'Kumo Hosting GmbH',
      address: 'Hauptstr. 1\n10115 Berlin',
    });
    expect(new TextDecoder().decode(bytes.subarray(0, 5))).toBe('%PDF-');
    const loaded = await PDFDocument.load(bytes);
    expect(loaded.getPageCount()).toBe(1);
    expect(loaded.getPage(0).getSize()).toEqual({ width: 595.28, height: 841.89 });
    expect(loaded.getTitle()).toBe('Invoice 2026-000042');

    const text = await pdfText(bytes);
    for (const s of [
      'Kumo Hosting GmbH',
      '10115 Berlin',
      'Invoice',
      '2026-000042',
      'acme',
      'Europe/Berlin',
      '2026-03-01 00:00 to 2026-04-01 00:00',
      '2026-04-01',
      'db/orders',
      '743.00',
      'hours',
      'per hour',
      '7430.00', // 26 748 000 GB-seconds
      'GB-hours',
      '0.4167', // 1.5e12 byte-seconds
      'from 2026-03-15 12:00', // line 3 covers part of the month
      'to 2026-04-01 00:00',
      '10.18',
      'EUR 11.20',
      'Page 1 of 1',
    ])
      expect(text).toContain(s);
  });

  it('renders a credit note with the invoice it corrects and why', async () => {
    const text = await pdfText(await invoicePdf(CREDIT_NOTE));
    for (const s of [
      'Credit note',
      '2026-000043',
      'Corrects invoice',
      '2026-000042',
      'incident 7',
      'EUR -1.50',
    ])
      expect(text).toContain(s);
  });

  it('paginates 200 lines, the table header and "Page n of m" on every page', async () => {
    const lines = Array.from({ length: 200 }, (_, i) => line(i + 1));
    const bytes = await invoicePdf(invoice(lines));
    const pages = (await PDFDocument.load(bytes)).getPageCount();
    expect(pages).toBeGreaterThan(3);
    const texts = await pdfPages(bytes);
    expect(texts).toHaveLength(pages);
    texts.forEach((text, i) => {
      expect(text).toContain('Project / resource');
      expect(text).toContain(`Page ${i + 1} of ${pages}`);
    });
    const text = texts.join('\n');
    expect(text).toMatch(/db\/orders-1(?!\d)/);
    expect(text).toContain('db/orders-200');
    expect(text).toContain(`EUR ${(200 * 10.18).toFixed(2)}`);
  });

  it('prints names the standard fonts cannot encode, emoji and CJK among them, instead of throwing', async () => {
    const doc = invoice(
      [line(1, { project: 'café-日本', resource: 'db/🚀-Łódź', description: 'Zoë ﬁle ő 👨‍👩‍👧' })],
      {
        org: 'acme 😀 株式会社',
      },
    );
    const bytes = await invoicePdf(doc, { name: 'Kumo 🌥 クモ', address: 'Straße 1\u200b\n' });
    expect((await PDFDocument.load(bytes)).getPageCount()).toBe(1);
    const text = await pdfText(bytes);
    for (const s of ['acme ? ????', 'café-??', 'db/?-Lódz', 'Zoë file o ?', 'Kumo ? ??', 'Straße 1'])
      expect(text).toContain(s);
  });
});
