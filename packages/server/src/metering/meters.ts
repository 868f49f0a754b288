/**
 * What Kumo meters. Every quantity is an integer of a unit-second (seconds, GB-seconds,
 * byte-seconds), measured per quarter-hour interval: an interval is the unit of deduplication
 * (one sample per target, resource, meter, dimensions and interval) and every time zone's midnight
 * falls on a quarter-hour, so a month in any org's time zone is a whole number of intervals.
 */
export const INTERVAL_SECONDS = 15 * 60;

export interface MeterDefinition {
  /** What a sample's quantity counts, per second of the interval it covers. */
  description: string;
  /** The unit of the quantity (summed over seconds). */
  unit: 'second' | 'GB-second' | 'byte-second';
  /** The unit prices are given in, and how many quantity units make one of it. */
  priceUnit: 'hour' | 'GB-month';
  perPriceUnit: bigint;
  /** The sample's dimension a price may be narrowed to (a plan's price). */
  priceDimension?: 'plan';
  /**
   * It accrues every second its resource is metered, whatever state it is in: the seconds it was
   * reported for are the resource's observed time, the rest of its life is missing (coverage).
   */
  coversLifetime?: true;
}

/** A GB-month is 730 hours of a GB, whatever the month's length (as the big clouds count it). */
const HOUR = 3600n;
const GB_MONTH = 730n * HOUR;

export const METERS = {
  'database.runtime': {
    description: 'Seconds the server ran, per plan',
    unit: 'second',
    priceUnit: 'hour',
    perPriceUnit: HOUR,
    priceDimension: 'plan',
  },
  'database.storage': {
    description: 'Provisioned storage (spec.storageGB) while the database exists, running or stopped',
    unit: 'GB-second',
    priceUnit: 'GB-month',
    perPriceUnit: GB_MONTH,
    coversLifetime: true,
  },
  'database.storage-used': {
    description: 'Storage the server actually used, as last measured by its agent',
    unit: 'byte-second',
    priceUnit: 'GB-month',
    perPriceUnit: GB_MONTH * 1_000_000_000n,
  },
  'backup.storage': {
    description:
      'Bytes a succeeded backup holds in the object store, from when it was stored until it is deleted',
    unit: 'byte-second',
    priceUnit: 'GB-month',
    perPriceUnit: GB_MONTH * 1_000_000_000n,
    coversLifetime: true,
  },
} as const satisfies Record<string, MeterDefinition>;

export type MeterName = keyof typeof METERS;
export const METER_NAMES = Object.keys(METERS) as MeterName[];

/** The start (epoch seconds) of the interval that holds the second t. */
export function intervalOf(t: number): number {
  return Math.floor(t / INTERVAL_SECONDS) * INTERVAL_SECONDS;
}

/** A stable text form of a sample's dimensions, part of its deduplication key. */
export function dimensionKey(dimensions: Readonly<Record<string, string>>): string {
  return Object.keys(dimensions)
    .sort()
    .map((k) => `${k}=${dimensions[k]}`)
    .join(',');
}
