import { formatMoney } from '@kumo/api/money';

/**
 * Integer minor units as money, exactly, with the currency after it: 1234 EUR → "12.34 EUR". Without
 * a currency (the price book has no price yet, so nothing is billed) "—".
 */
export function money(minor: number, currency: string | undefined): string {
  return currency ? `${formatMoney(minor, currency)} ${currency}` : '—';
}
