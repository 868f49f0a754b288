import type pg from 'pg';
import type { MeterName } from './meters.js';
import type { Price } from './pricing.js';

/** A price as it is added: a new row, never an edit of an old one. */
export interface NewPrice {
  meter: MeterName;
  plan: string;
  currency: string;
  unitPrice: bigint;
  effectiveFrom: number;
  createdBy: string;
}

/** Why a price cannot be added, for the API to say (422 or 409). */
export class PriceRefused extends Error {
  constructor(
    readonly field: string,
    message: string,
    readonly conflict = false,
  ) {
    super(message);
  }
}

/**
 * The operator's price book: append-only. A price takes effect at its effectiveFrom and holds
 * until a later one of the same meter and plan; a change can start now or later, never earlier
 * than the moment it is made, so what was already used is never repriced.
 */
export class PriceBook {
  constructor(private readonly pool: pg.Pool) {}

  async list(): Promise<Array<Price & { createdAt: number; createdBy: string }>> {
    const { rows } = await this.pool.query<{
      id: string;
      meter: MeterName;
      plan: string;
      currency: string;
      unit_price: string;
      effective_from: string;
      created_at: string;
      created_by: string;
    }>(
      `SELECT id, meter, plan, currency, unit_price, extract(epoch FROM effective_from)::bigint AS effective_from,
              extract(epoch FROM created_at)::bigint AS created_at, created_by
         FROM prices ORDER BY meter, plan, effective_from`,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      meter: r.meter,
      plan: r.plan,
      currency: r.currency,
      unitPrice: BigInt(r.unit_price),
      effectiveFrom: Number(r.effective_from),
      createdAt: Number(r.created_at),
      createdBy: r.created_by,
    }));
  }

  /**
   * Adds a price. One currency for the whole book (the first price's); effectiveFrom must not lie
   * before the store's clock now (rounded down to the quarter-hour the price would start in).
   */
  async add(price: NewPrice): Promise<Price> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('LOCK TABLE prices IN SHARE ROW EXCLUSIVE MODE');
      const { rows: currencies } = await client.query<{ currency: string }>(
        'SELECT DISTINCT currency FROM prices',
      );
      const current = currencies[0]?.currency;
      if (current && current !== price.currency)
        throw new PriceRefused(
          'currency',
          `The price book is in ${current}; every price must be in ${current}.`,
        );
      const { rows: clock } = await client.query<{ now: string }>(
        'SELECT extract(epoch FROM now())::bigint AS now',
      );
      const now = Number(clock[0]!.now);
      if (price.effectiveFrom < now - (now % 900))
        throw new PriceRefused(
          'effectiveFrom',
          `A price cannot take effect in the past (it is now ${new Date(now * 1000).toISOString()}): usage already counted keeps the prices it had. Give a time from the current quarter-hour on.`,
        );
      const inserted = await client.query<{ id: string }>(
        `INSERT INTO prices (meter, plan, currency, unit_price, effective_from, created_by)
         VALUES ($1, $2, $3, $4, to_timestamp($5), $6)
         ON CONFLICT (meter, plan, effective_from) DO NOTHING RETURNING id`,
        [
          price.meter,
          price.plan,
          price.currency,
          price.unitPrice.toString(),
          price.effectiveFrom,
          price.createdBy,
        ],
      );
      if (inserted.rowCount === 0)
        throw new PriceRefused(
          'effectiveFrom',
          `A price of ${price.meter}${price.plan ? ` for plan ${price.plan}` : ''} already takes effect at that time; prices are never edited — add one with another effectiveFrom.`,
          true,
        );
      await client.query('COMMIT');
      return { ...price, id: Number(inserted.rows[0]!.id) };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}
