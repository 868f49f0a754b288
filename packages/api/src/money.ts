/** The minor-unit exponent of an ISO 4217 currency (EUR 2, JPY 0, BHD 3), from Intl. */
export function minorDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
    .maximumFractionDigits!;
}

/**
 * Minor units as a major-unit decimal string with every minor digit, exactly (no floating point):
 * 1230 EUR cents → "12.30". The API gives money in minor units; this is how it is shown.
 */
export function formatMoney(minor: bigint | number, currency: string): string {
  const value = BigInt(minor);
  const digits = minorDigits(currency);
  const abs = value < 0n ? -value : value;
  const scale = 10n ** BigInt(digits);
  const fraction = digits === 0 ? '' : `.${(abs % scale).toString().padStart(digits, '0')}`;
  return `${value < 0n ? '-' : ''}${abs / scale}${fraction}`;
}
