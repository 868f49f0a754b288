import { PDFDocument, type PDFFont, type PDFPage, StandardFonts, rgb } from 'pdf-lib';
import type { InvoiceDocument, InvoiceLine } from './invoice.js';
import { formatMoney, roundHalfEven } from './pricing.js';

/** Who issues the document, printed at its top. */
export interface InvoiceIssuer {
  name: string;
  /** Printed under the name; "\n" separates its lines. Default: none. */
  address?: string;
}

/**
 * An invoice or a credit note as a PDF: A4 pages with a header (the issuer when given, "Invoice"
 * or "Credit note", number, org, period with its time zone, issue date, currency; for a credit note
 * the invoice it corrects and why), the table of lines (its header repeated on every page), the
 * total, and "Page n of m" in every footer. Deterministic: its dates come from the document, not
 * the clock. Never throws for text the standard fonts cannot show (emoji, CJK): see printable.
 */
export async function invoicePdf(doc: InvoiceDocument, issuer?: InvoiceIssuer): Promise<Uint8Array> {
  const pdf = await PDFDocument.create({ updateMetadata: false });
  const type = new Typesetter(
    await pdf.embedFont(StandardFonts.Helvetica),
    await pdf.embedFont(StandardFonts.HelveticaBold),
  );
  const title = doc.kind === 'invoice' ? 'Invoice' : 'Credit note';
  pdf.setTitle(`${title} ${doc.number}`);
  pdf.setSubject(`${doc.org}, ${doc.period.month}`);
  if (issuer) pdf.setAuthor(issuer.name);
  pdf.setCreator('Kumo');
  pdf.setProducer('Kumo');
  pdf.setCreationDate(new Date(doc.issuedAt));
  pdf.setModificationDate(new Date(doc.issuedAt));

  let page = pdf.addPage(A4);
  let y = header(page, type, doc, title, issuer);
  /** A new page, headed with the document's number and org; its content starts at CONTINUED. */
  const continuation = (): PDFPage => {
    const next = pdf.addPage(A4);
    type.draw(next, type.fit(`${title} ${doc.number}, ${doc.org}`, WIDTH, type.bold), LEFT, TOP - SIZE, {
      font: type.bold,
    });
    return next;
  };

  const titles = COLUMNS.map((c) => [c.title(doc)]);
  y = tableRow(page, type, y, titles, true);
  if (doc.lines.length === 0) y = tableRow(page, type, y, [[], ['No lines.']], false);
  for (const line of doc.lines) {
    const cells = COLUMNS.map((c) => c.cell(line, doc));
    if (y - rowHeight(type, cells) < BOTTOM) {
      page = continuation();
      y = tableRow(page, type, CONTINUED, titles, true);
    }
    y = tableRow(page, type, y, cells, false);
  }

  if (y - TOTAL_HEIGHT < BOTTOM) {
    page = continuation();
    y = CONTINUED;
  }
  page.drawLine({ start: { x: LEFT, y }, end: { x: RIGHT, y }, thickness: 1 });
  const baseline = y - 16;
  type.draw(page, 'Total', COLUMNS[0]!.width + LEFT + PAD, baseline, { font: type.bold, size: 10 });
  const total = `${doc.currency} ${formatMoney(BigInt(doc.total), doc.currency)}`;
  type.draw(page, type.fit(total, WIDTH / 2, type.bold, 10), RIGHT - PAD, baseline, {
    font: type.bold,
    size: 10,
    right: true,
  });

  const pages = pdf.getPages();
  pages.forEach((p, i) => {
    type.draw(p, type.fit(`${title} ${doc.number}`, WIDTH / 2), LEFT, FOOTER, { size: 8 });
    type.draw(p, `Page ${i + 1} of ${pages.length}`, RIGHT, FOOTER, { size: 8, right: true });
  });
  return pdf.save();
}

/** A4 in points, and the frame everything is laid out in. */
const A4: [number, number] = [595.28, 841.89];
const LEFT = 50;
const RIGHT = A4[0] - 50;
const WIDTH = RIGHT - LEFT;
const TOP = A4[1] - 50;
const CONTINUED = TOP - 22;
const FOOTER = 30;
const BOTTOM = 60;
const SIZE = 9;
const LEADING = 11;
/** Inside a table cell: left and right, and above and below its text. */
const PAD = 3;
const ROW_PAD = 4;
/** A paragraph longer than this many lines is cut with an ellipsis (the CSV export has it whole). */
const MAX_CELL_LINES = 8;
const TOTAL_HEIGHT = 24;
const RULE = rgb(0.8, 0.8, 0.8);

interface Column {
  title: (doc: InvoiceDocument) => string;
  width: number;
  right?: boolean;
  /** The cell's paragraphs, each wrapped on its own. */
  cell: (line: InvoiceLine, doc: InvoiceDocument) => string[];
}

const COLUMNS: Column[] = [
  { title: () => 'No.', width: 26, right: true, cell: (l) => [String(l.number)] },
  {
    title: () => 'Description',
    width: 150,
    cell: (l, doc) =>
      l.from === doc.period.from && l.to === doc.period.to
        ? [l.description]
        : [
            l.description,
            `from ${localTime(l.from, doc.period.timeZone)}`,
            `to ${localTime(l.to, doc.period.timeZone)}`,
          ],
  },
  { title: () => 'Project / resource', width: 120, cell: (l) => [l.project, l.resource].filter(Boolean) },
  { title: () => 'Quantity', width: 72, right: true, cell: (l) => humanQuantity(l) },
  {
    title: () => 'Unit price',
    width: 70,
    right: true,
    cell: (l) => (l.unitPrice ? [l.unitPrice, `per ${l.priceUnit}`] : ['—']),
  },
  {
    title: (doc) => `Amount (${doc.currency})`,
    width: WIDTH - 26 - 150 - 120 - 72 - 70,
    right: true,
    cell: (l, doc) => [formatMoney(BigInt(l.amount), doc.currency)],
  },
];

/** Draws the first page's header; returns where the table starts. */
function header(
  page: PDFPage,
  type: Typesetter,
  doc: InvoiceDocument,
  title: string,
  issuer: InvoiceIssuer | undefined,
): number {
  const titleWidth = type.bold.widthOfTextAtSize(title, 22);
  type.draw(page, title, RIGHT, TOP - 22, { font: type.bold, size: 22, right: true });
  let y = TOP;
  if (issuer) {
    for (const line of type.lines(issuer.name, WIDTH - titleWidth - 20, type.bold, 12)) {
      type.draw(page, line, LEFT, (y -= 14), { font: type.bold, size: 12 });
    }
    for (const paragraph of (issuer.address ?? '').split('\n').filter((p) => p.trim())) {
      for (const line of type.lines(paragraph, WIDTH - titleWidth - 20))
        type.draw(page, line, LEFT, (y -= 12));
    }
  }
  y = Math.min(y, TOP - 30) - 24;

  const tz = doc.period.timeZone;
  const fields: Array<[string, string | undefined]> = [
    ['Number', doc.number],
    ['Org', doc.org],
    [
      'Period',
      `${doc.period.month}: ${localTime(doc.period.from, tz)} to ${localTime(doc.period.to, tz)}, ${tz}`,
    ],
    ['Issued', localTime(doc.issuedAt, tz).slice(0, 10)],
    ['Currency', doc.currency],
    ['Corrects invoice', doc.corrects],
    ['Reason', doc.reason],
  ];
  for (const [label, value] of fields) {
    if (value === undefined) continue;
    type.draw(page, label, LEFT, y, { font: type.bold });
    for (const line of type.lines(value, WIDTH - 90, type.regular, SIZE, MAX_CELL_LINES)) {
      type.draw(page, line, LEFT + 90, y);
      y -= LEADING + 1;
    }
  }
  return y - 12;
}

function rowHeight(type: Typesetter, cells: string[][]): number {
  const lines = Math.max(1, ...cells.map((c, i) => cellLines(type, c, COLUMNS[i]!).length));
  return 2 * ROW_PAD + SIZE + (lines - 1) * LEADING + 2;
}

function cellLines(type: Typesetter, paragraphs: string[], column: Column, font = type.regular): string[] {
  return paragraphs.flatMap((p) => type.lines(p, column.width - 2 * PAD, font));
}

/** Draws one row of the table (the header row in bold) from its top y; returns its bottom. */
function tableRow(page: PDFPage, type: Typesetter, y: number, cells: string[][], isHeader: boolean): number {
  const font = isHeader ? type.bold : type.regular;
  let x = LEFT;
  let lines = 1;
  COLUMNS.forEach((column, i) => {
    const text = cellLines(type, cells[i] ?? [], column, font);
    lines = Math.max(lines, text.length);
    text.forEach((line, n) => {
      const baseline = y - ROW_PAD - SIZE - n * LEADING;
      if (column.right) type.draw(page, line, x + column.width - PAD, baseline, { font, right: true });
      else type.draw(page, line, x + PAD, baseline, { font });
    });
    x += column.width;
  });
  const bottom = y - (2 * ROW_PAD + SIZE + (lines - 1) * LEADING + 2);
  page.drawLine({
    start: { x: LEFT, y: bottom },
    end: { x: RIGHT, y: bottom },
    thickness: isHeader ? 1 : 0.5,
    color: isHeader ? rgb(0, 0, 0) : RULE,
  });
  return bottom;
}

/**
 * A line's quantity as a person reads it, and its unit: hours for seconds, GB-hours for GB-seconds
 * and byte-seconds (GB = 10⁹ bytes, as prices count it), to four decimals at most. Any other unit
 * (a credit note's "credit") is shown as it is.
 */
function humanQuantity(l: InvoiceLine): string[] {
  const per = HUMAN_UNITS[l.unit];
  if (!per || !/^-?\d+$/.test(l.quantity)) return [l.quantity, l.unit];
  const tenThousandths = roundHalfEven(BigInt(l.quantity) * 10_000n, per.divisor);
  const abs = tenThousandths < 0n ? -tenThousandths : tenThousandths;
  const fraction = (abs % 10_000n)
    .toString()
    .padStart(4, '0')
    .replace(/0{1,2}$/, '');
  return [`${tenThousandths < 0n ? '-' : ''}${abs / 10_000n}.${fraction}`, per.name];
}

const HUMAN_UNITS: Record<string, { divisor: bigint; name: string } | undefined> = {
  second: { divisor: 3600n, name: 'hours' },
  'GB-second': { divisor: 3600n, name: 'GB-hours' },
  'byte-second': { divisor: 3600n * 1_000_000_000n, name: 'GB-hours' },
};

/** "2026-03-01 00:00": an instant in a time zone. */
function localTime(iso: string, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(iso));
  const part = (t: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === t)?.value ?? '';
  return `${part('year')}-${part('month')}-${part('day')} ${part('hour')}:${part('minute')}`;
}

/** Letters that neither WinAnsi has nor Unicode decomposes into one it has. */
const FALLBACK: Record<string, string | undefined> = {
  Ł: 'L',
  ł: 'l',
  Đ: 'D',
  đ: 'd',
  Ħ: 'H',
  ħ: 'h',
  ı: 'i',
  '\u2010': '-',
  '\u2011': '-',
  '\u2212': '-',
};
const GRAPHEMES = new Intl.Segmenter('en', { granularity: 'grapheme' });

/**
 * Measures, wraps and draws text in the standard 14 fonts (Helvetica), which encode only WinAnsi
 * (Latin-1 and a few more): every string goes through printable first.
 */
class Typesetter {
  private readonly encodable: ReadonlySet<number>;

  constructor(
    readonly regular: PDFFont,
    readonly bold: PDFFont,
  ) {
    this.encodable = new Set(regular.getCharacterSet());
  }

  /**
   * text with what WinAnsi cannot encode replaced, one user-perceived character (grapheme) at a
   * time: kept when it encodes (after NFC: "é" in any form); else whitespace becomes a space and
   * controls and format characters (zero-width joiners, bidi marks) are dropped; else its
   * compatibility decomposition without accents when that encodes ("ő" → "o", "ﬁ" → "fi",
   * fullwidth "Ａ" → "A"); else a letter from FALLBACK ("ł" → "l"); else "?" (one per emoji, flag
   * or CJK character). Never throws.
   */
  printable(text: string): string {
    const encodes = (s: string) => s !== '' && [...s].every((c) => this.encodable.has(c.codePointAt(0)!));
    let out = '';
    for (const { segment } of GRAPHEMES.segment(text.normalize('NFC'))) {
      if (encodes(segment)) out += segment;
      else if (/^\s+$/u.test(segment)) out += ' ';
      else if (/^[\p{Cc}\p{Cf}]+$/u.test(segment)) continue;
      else {
        const plain = segment.normalize('NFKD').replace(/\p{M}/gu, '');
        out += encodes(plain) ? plain : (FALLBACK[segment] ?? '?');
      }
    }
    return out;
  }

  /** text made printable and wrapped to width: at spaces, inside a word too long for a line. */
  lines(text: string, width: number, font = this.regular, size = SIZE, max = MAX_CELL_LINES): string[] {
    const fits = (s: string) => font.widthOfTextAtSize(s, size) <= width;
    const lines: string[] = [];
    let current = '';
    for (const word of this.printable(text).split(' ').filter(Boolean)) {
      const candidate = current ? `${current} ${word}` : word;
      if (fits(candidate)) {
        current = candidate;
        continue;
      }
      if (current) lines.push(current);
      current = word;
      while (current.length > 1 && !fits(current)) {
        let n = current.length - 1;
        while (n > 1 && !fits(current.slice(0, n))) n--;
        lines.push(current.slice(0, n));
        current = current.slice(n);
      }
    }
    if (current) lines.push(current);
    if (lines.length <= max) return lines;
    return [...lines.slice(0, max - 1), this.ellipsis(lines[max - 1]!, width, font, size)];
  }

  /** text made printable, on one line, cut with an ellipsis when wider than width. */
  fit(text: string, width: number, font = this.regular, size = SIZE): string {
    const line = this.printable(text);
    return font.widthOfTextAtSize(line, size) <= width ? line : this.ellipsis(line, width, font, size);
  }

  /** Draws a line that lines or fit returned (or a literal that prints as it is). */
  draw(
    page: PDFPage,
    line: string,
    x: number,
    y: number,
    opts: { font?: PDFFont; size?: number; right?: boolean } = {},
  ): void {
    const font = opts.font ?? this.regular;
    const size = opts.size ?? SIZE;
    const at = opts.right ? x - font.widthOfTextAtSize(line, size) : x;
    page.drawText(line, { x: at, y, font, size, color: rgb(0, 0, 0) });
  }

  private ellipsis(line: string, width: number, font: PDFFont, size: number): string {
    let cut = line;
    while (cut && font.widthOfTextAtSize(`${cut}…`, size) > width) cut = cut.slice(0, -1);
    return `${cut}…`;
  }
}
