import { minorDigits } from '@kumo/api';
import { METERS, type MeterName } from './meters.js';

// How money is shown is part of the API contract (@kumo/api), shared with the CLI and the console.
export { formatMoney, minorDigits } from '@kumo/api';

/**
 * A price from the price book. unitPrice is in millionths of the currency's minor unit per the
 * meter's price unit (per hour, per GB-month): 0.0137 EUR an hour is 1.37 cents, 1 370 000.
 */
export interface Price {
  id: number;
  meter: MeterName;
  /** '' for every plan (and for meters without plans). */
  plan: string;
  currency: string;
  unitPrice: bigint;
  /** Epoch seconds, on a quarter-hour. */
  effectiveFrom: number;
}

const MICRO = 1_000_000n;

/** n / d rounded to the nearest integer, halves to the even neighbour (banker's rounding). */
export function roundHalfEven(n: bigint, d: bigint): bigint {
  if (d <= 0n) throw new RangeError('roundHalfEven: the divisor must be positive');
  const negative = n < 0n;
  const abs = negative ? -n : n;
  let q = abs / d;
  const r = abs % d;
  if (r * 2n > d || (r * 2n === d && q % 2n === 1n)) q += 1n;
  return negative ? -q : q;
}

/**
 * The price of meter (for plan, when it has plans) at epoch second t: the latest that took effect
 * by then, a plan's own price before the price for every plan. Undefined when none applies.
 */
export function priceAt(
  prices: readonly Price[],
  meter: MeterName,
  plan: string,
  t: number,
): Price | undefined {
  let best: Price | undefined;
  for (const p of prices) {
    if (p.meter !== meter || p.effectiveFrom > t || (p.plan !== '' && p.plan !== plan)) continue;
    const better =
      !best ||
      (p.plan !== '' && best.plan === '') ||
      (p.plan === best.plan && p.effectiveFrom > best.effectiveFrom);
    if (better) best = p;
  }
  return best;
}

/**
 * What quantity (the meter's unit-seconds) costs at unitPrice, in minor units. Every line of a
 * bill is rounded once, here, from exact integers: a month billed in pieces and billed whole differ
 * only by the rounding of each line.
 */
export function amountOf(meter: MeterName, quantity: bigint, unitPrice: bigint): bigint {
  return roundHalfEven(quantity * unitPrice, METERS[meter].perPriceUnit * MICRO);
}

/**
 * "0.0137" (an amount in the currency's major unit, at most six digits finer than its minor unit)
 * as millionths of the minor unit; undefined when it is not such a number.
 */
export function parseUnitPrice(text: string, currency: string): bigint | undefined {
  const m = /^(\d{1,12})(?:\.(\d+))?$/.exec(text);
  if (!m) return undefined;
  const digits = minorDigits(currency) + 6;
  const fraction = m[2] ?? '';
  if (fraction.length > digits) return undefined;
  return BigInt(m[1]!) * 10n ** BigInt(digits) + BigInt(fraction.padEnd(digits, '0') || '0');
}

/** Millionths of the minor unit back as a major-unit decimal string ("0.0137"). */
export function formatUnitPrice(unitPrice: bigint, currency: string): string {
  return formatScaled(unitPrice, minorDigits(currency) + 6);
}

function formatScaled(value: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  const whole = value / scale;
  const fraction = (value % scale).toString().padStart(digits, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : `${whole}`;
}
