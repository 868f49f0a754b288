import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { billingPeriod } from './cost-report.js';
import { INTERVAL_SECONDS } from './meters.js';
import {
  type Price,
  amountOf,
  formatMoney,
  formatUnitPrice,
  minorDigits,
  parseUnitPrice,
  priceAt,
  roundHalfEven,
} from './pricing.js';

/** Epoch seconds of an ISO time. */
const epoch = (iso: string) => Date.parse(iso) / 1000;
const iso = (t: number) => new Date(t * 1000).toISOString();

describe('roundHalfEven', () => {
  it.each([
    { n: 5n, d: 2n, q: 2n, reason: 'a half rounds to the even neighbour, down' },
    { n: 7n, d: 2n, q: 4n, reason: 'a half rounds to the even neighbour, up' },
    { n: -5n, d: 2n, q: -2n, reason: 'negative halves round to even too' },
    { n: -7n, d: 2n, q: -4n, reason: 'negative halves round to even, away from zero' },
    { n: 1n, d: 3n, q: 0n, reason: 'less than a half rounds down' },
    { n: 2n, d: 3n, q: 1n, reason: 'more than a half rounds up' },
    { n: 6n, d: 3n, q: 2n, reason: 'an exact quotient stays' },
  ])('$n / $d → $q: $reason', ({ n, d, q }) => {
    expect(roundHalfEven(n, d)).toBe(q);
  });

  it('refuses a divisor that is not positive', () => {
    expect(() => roundHalfEven(1n, 0n)).toThrow(RangeError);
    expect(() => roundHalfEven(1n, -2n)).toThrow(RangeError);
  });

  it('is the nearest integer, ties to even', () => {
    const big = 10n ** 30n;
    fc.assert(
      fc.property(fc.bigInt({ min: -big, max: big }), fc.bigInt({ min: 1n, max: 10n ** 15n }), (n, d) => {
        const q = roundHalfEven(n, d);
        const r = n - q * d;
        const twice = 2n * (r < 0n ? -r : r);
        expect(twice <= d).toBe(true);
        if (twice === d) expect(q % 2n).toBe(0n);
        expect(roundHalfEven(-n, d)).toBe(-q);
      }),
    );
  });

  it('takes the even one of the two neighbours of every exact half', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }),
        fc.bigInt({ min: 1n, max: 10n ** 9n }),
        (k, m) => {
          // (2k + 1) m / 2m = k + ½, halfway between k and k + 1.
          const q = roundHalfEven((2n * k + 1n) * m, 2n * m);
          expect(q === k || q === k + 1n).toBe(true);
          expect(q % 2n).toBe(0n);
        },
      ),
    );
  });
});

describe('priceAt', () => {
  const price = (p: Partial<Price> & Pick<Price, 'unitPrice'>): Price => ({
    id: 0,
    meter: 'database.runtime',
    plan: '',
    currency: 'EUR',
    effectiveFrom: epoch('2026-01-01T00:00:00Z'),
    ...p,
  });
  const everyPlan = price({ id: 1, unitPrice: 1_000_000n });
  const small = price({ id: 2, plan: 'small', unitPrice: 2_000_000n });
  const smallLater = price({
    id: 3,
    plan: 'small',
    unitPrice: 3_000_000n,
    effectiveFrom: epoch('2026-06-01T00:00:00Z'),
  });
  const storage = price({ id: 4, meter: 'database.storage', unitPrice: 10_000_000n });
  const book = [everyPlan, small, smallLater, storage];

  it("takes a plan's own price before the price for every plan", () => {
    expect(priceAt(book, 'database.runtime', 'small', epoch('2026-03-01T00:00:00Z'))?.id).toBe(2);
    expect(priceAt(book, 'database.runtime', 'large', epoch('2026-03-01T00:00:00Z'))?.id).toBe(1);
    // Whatever order the book lists them in.
    expect(priceAt([...book].reverse(), 'database.runtime', 'small', epoch('2026-03-01T00:00:00Z'))?.id).toBe(
      2,
    );
  });

  it('takes the latest price in effect by then, from its first second on', () => {
    expect(priceAt(book, 'database.runtime', 'small', smallLater.effectiveFrom - 1)?.id).toBe(2);
    expect(priceAt(book, 'database.runtime', 'small', smallLater.effectiveFrom)?.id).toBe(3);
    expect(priceAt([...book].reverse(), 'database.runtime', 'small', epoch('2027-01-01T00:00:00Z'))?.id).toBe(
      3,
    );
    const everyPlanLater = price({
      id: 5,
      unitPrice: 4_000_000n,
      effectiveFrom: epoch('2026-09-01T00:00:00Z'),
    });
    expect(
      priceAt([...book, everyPlanLater], 'database.runtime', 'large', epoch('2026-10-01T00:00:00Z'))?.id,
    ).toBe(5);
  });

  it('has no price before the first one takes effect', () => {
    expect(priceAt(book, 'database.runtime', 'small', everyPlan.effectiveFrom - 1)).toBeUndefined();
    expect(priceAt([], 'database.runtime', 'small', everyPlan.effectiveFrom)).toBeUndefined();
  });

  it("never takes another meter's price", () => {
    expect(priceAt([storage], 'database.runtime', '', epoch('2026-03-01T00:00:00Z'))).toBeUndefined();
    expect(priceAt(book, 'database.storage-used', '', epoch('2026-03-01T00:00:00Z'))).toBeUndefined();
    expect(priceAt(book, 'database.storage', '', epoch('2026-03-01T00:00:00Z'))?.id).toBe(4);
  });
});

describe('amountOf', () => {
  it('bills an hour of runtime at 0.0137 EUR/h as one cent (1.37, rounded)', () => {
    expect(amountOf('database.runtime', 3_600n, 1_370_000n)).toBe(1n);
    // A hundred hours: 137 cents exactly.
    expect(amountOf('database.runtime', 360_000n, 1_370_000n)).toBe(137n);
  });

  it('bills 730 hours of a GB at 0.10 EUR/GB-month as ten cents exactly', () => {
    expect(amountOf('database.storage', 730n * 3_600n, 10_000_000n)).toBe(10n);
    // The same GB-month as bytes used: 10^9 bytes for 730 hours.
    expect(amountOf('database.storage-used', 730n * 3_600n * 1_000_000_000n, 10_000_000n)).toBe(10n);
  });

  it('rounds a line once, halves to even', () => {
    // Half an hour at 1 cent an hour is half a cent: 0; one and a half hours: 1.5 cents → 2.
    expect(amountOf('database.runtime', 1_800n, 1_000_000n)).toBe(0n);
    expect(amountOf('database.runtime', 5_400n, 1_000_000n)).toBe(2n);
  });
});

describe('unit prices and money as text', () => {
  it.each([
    { text: '0.0137', currency: 'EUR', unitPrice: 1_370_000n, reason: '1.37 cents' },
    { text: '1', currency: 'EUR', unitPrice: 100_000_000n, reason: 'a whole euro' },
    { text: '0.00000001', currency: 'EUR', unitPrice: 1n, reason: 'the finest EUR step' },
    { text: '2', currency: 'JPY', unitPrice: 2_000_000n, reason: 'JPY has no minor unit' },
    { text: '0.000001', currency: 'JPY', unitPrice: 1n, reason: 'the finest JPY step' },
    { text: '0.001', currency: 'BHD', unitPrice: 1_000_000n, reason: 'one fils, BHD has three minor digits' },
  ])('"$text" $currency is $unitPrice: $reason', ({ text, currency, unitPrice }) => {
    expect(parseUnitPrice(text, currency)).toBe(unitPrice);
    expect(formatUnitPrice(unitPrice, currency)).toBe(text);
  });

  it.each([
    { text: '1.2.3', currency: 'EUR', reason: 'two decimal points' },
    { text: '-1', currency: 'EUR', reason: 'negative' },
    { text: '1e3', currency: 'EUR', reason: 'an exponent' },
    { text: '', currency: 'EUR', reason: 'empty' },
    { text: '.5', currency: 'EUR', reason: 'no whole part' },
    { text: '1.', currency: 'EUR', reason: 'a point without digits' },
    { text: ' 1', currency: 'EUR', reason: 'a space' },
    {
      text: '0.000000001',
      currency: 'EUR',
      reason: 'nine fraction digits: finer than a millionth of a cent',
    },
    { text: '0.0000001', currency: 'JPY', reason: 'seven fraction digits: finer than a millionth of a yen' },
    {
      text: '0.0000000001',
      currency: 'BHD',
      reason: 'ten fraction digits: finer than a millionth of a fils',
    },
    { text: '1234567890123', currency: 'EUR', reason: 'more than twelve whole digits' },
  ])('refuses "$text" $currency: $reason', ({ text, currency }) => {
    expect(parseUnitPrice(text, currency)).toBeUndefined();
  });

  it.each(['EUR', 'JPY', 'BHD'])(
    'round-trips any %s decimal down to a millionth of its minor unit',
    (currency) => {
      const digits = minorDigits(currency) + 6;
      const decimal = fc.record({
        whole: fc.stringMatching(/^\d{1,12}$/),
        fraction: fc.stringMatching(new RegExp(`^\\d{0,${digits}}$`)),
      });
      fc.assert(
        fc.property(decimal, ({ whole, fraction }) => {
          const text = fraction ? `${whole}.${fraction}` : whole;
          const unitPrice = parseUnitPrice(text, currency);
          expect(unitPrice).toBeDefined();
          // Written back without leading or trailing zeros, and read back to the same value.
          const canonical = fraction.replace(/0+$/, '');
          expect(formatUnitPrice(unitPrice!, currency)).toBe(
            `${BigInt(whole)}${canonical ? `.${canonical}` : ''}`,
          );
          expect(parseUnitPrice(formatUnitPrice(unitPrice!, currency), currency)).toBe(unitPrice);
        }),
      );
    },
  );

  it('writes money with every minor digit', () => {
    expect(formatMoney(1230n, 'EUR')).toBe('12.30');
    expect(formatMoney(-5n, 'EUR')).toBe('-0.05');
    expect(formatMoney(0n, 'EUR')).toBe('0.00');
    expect(formatMoney(1234n, 'JPY')).toBe('1234');
    expect(formatMoney(-1234n, 'JPY')).toBe('-1234');
    expect(formatMoney(1234n, 'BHD')).toBe('1.234');
  });

  it('knows the minor digits of a currency', () => {
    expect([minorDigits('EUR'), minorDigits('JPY'), minorDigits('BHD')]).toEqual([2, 0, 3]);
  });
});

describe('billingPeriod', () => {
  const ZONES = [
    'UTC',
    'Europe/Berlin',
    'America/New_York',
    'Asia/Kathmandu',
    'Australia/Lord_Howe',
    'Pacific/Chatham',
    'Asia/Kolkata',
  ];
  const span = (timeZone: string, month: string) => {
    const p = billingPeriod(timeZone, 0, month);
    return { from: iso(p.from), to: iso(p.to), hours: (p.to - p.from) / 3_600 };
  };

  it('spans a calendar month of the time zone, from its first midnight to the next month’s', () => {
    expect(billingPeriod('UTC', 0, '2026-12')).toEqual({
      month: '2026-12',
      timeZone: 'UTC',
      from: epoch('2026-12-01T00:00:00Z'),
      to: epoch('2027-01-01T00:00:00Z'),
    });
    expect(span('Europe/Berlin', '2026-12')).toMatchObject({
      from: '2026-11-30T23:00:00.000Z',
      to: '2026-12-31T23:00:00.000Z',
    });
    expect(span('Asia/Kathmandu', '2027-04').from).toBe('2027-03-31T18:15:00.000Z');
  });

  it('has an hour less in the month daylight saving time starts, an hour more when it ends', () => {
    expect(span('Europe/Berlin', '2027-03').hours).toBe(743);
    expect(span('Europe/Berlin', '2027-10').hours).toBe(745);
    expect(span('Europe/Berlin', '2027-04').hours).toBe(720);
  });

  it('takes the month that holds now in the time zone when no month is given', () => {
    const now = epoch('2026-12-31T23:30:00Z');
    expect(billingPeriod('Europe/Berlin', now).month).toBe('2027-01');
    expect(billingPeriod('UTC', now).month).toBe('2026-12');
    expect(billingPeriod('America/New_York', now).month).toBe('2026-12');
  });

  it.each([
    { month: '2026-13', reason: 'no 13th month' },
    { month: '2026-00', reason: 'months count from 01' },
    { month: '26-01', reason: 'a two-digit year' },
    { month: '2026-1', reason: 'a one-digit month' },
    { month: '2026-01-01', reason: 'a day, not a month' },
  ])('refuses "$month": $reason', ({ month }) => {
    expect(() => billingPeriod('UTC', 0, month)).toThrow(RangeError);
  });

  it('starts and ends every month of every zone on a quarter-hour, months following each other', () => {
    const month = fc.record({
      year: fc.integer({ min: 2000, max: 2100 }),
      index: fc.integer({ min: 0, max: 11 }),
    });
    const text = (year: number, index: number) => `${year}-${String(index + 1).padStart(2, '0')}`;
    fc.assert(
      fc.property(month, fc.constantFrom(...ZONES), ({ year, index }, zone) => {
        const p = billingPeriod(zone, 0, text(year, index));
        expect(p.month).toBe(text(year, index));
        expect(p.from % INTERVAL_SECONDS).toBe(0);
        expect(p.to % INTERVAL_SECONDS).toBe(0);
        // 28 to 31 days, give or take a daylight saving hour.
        expect(p.to - p.from).toBeGreaterThanOrEqual(28 * 86_400 - 3_600);
        expect(p.to - p.from).toBeLessThanOrEqual(31 * 86_400 + 3_600);
        // Midnight on the 1st there.
        const local = new Intl.DateTimeFormat('en-CA', {
          timeZone: zone,
          year: 'numeric',
          month: '2-digit',
          day: '2-digit',
          hour: '2-digit',
          minute: '2-digit',
          hourCycle: 'h23',
        }).format(new Date(p.from * 1000));
        expect(local).toBe(`${text(year, index)}-01, 00:00`);
        // The next month starts where this one ends; its seconds are this month's, now-wise.
        const next = index === 11 ? text(year + 1, 0) : text(year, index + 1);
        expect(billingPeriod(zone, 0, next).from).toBe(p.to);
        expect(billingPeriod(zone, p.from).month).toBe(p.month);
        expect(billingPeriod(zone, p.to - 1).month).toBe(p.month);
        expect(billingPeriod(zone, p.to).month).toBe(next);
      }),
    );
  });
});
