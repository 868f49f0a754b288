import type pg from 'pg';
import { INTERVAL_SECONDS, dimensionKey, type MeterName } from './meters.js';
import type { UsageSample } from './usage-recorder.js';

/** What a report did: samples that added to the ledger, ones it already had, and ones it refused. */
export interface IngestResult {
  accepted: number;
  duplicates: number;
  /**
   * Samples of resources that are not (and never were) on the reporting target, or of quarter-hours
   * the resource did not exist in: one entry per resource and reason.
   */
  rejected: Array<{ resourceUid: string; reason: string }>;
}

/**
 * One sample per key, the one the ledger would keep (final over open, then more seconds): a batch
 * may hold a key twice (an open sample and its final one), which one INSERT cannot take.
 */
function strongest(samples: readonly UsageSample[]): UsageSample[] {
  const best = new Map<string, UsageSample>();
  for (const s of samples) {
    const key = `${s.resourceUid}|${s.meter}|${dimensionKey(s.dimensions)}|${s.intervalStart}`;
    const seen = best.get(key);
    if (!seen || (s.final && !seen.final) || (s.final === seen.final && s.seconds > seen.seconds))
      best.set(key, s);
  }
  return [...best.values()];
}

/** A resource as the ledger knows it: whose it is and when it existed. */
export interface MeteredResource {
  uid: string;
  kind: string;
  org: string;
  project: string;
  name: string;
  target: string;
  createdAt: number;
  deletedAt: number | undefined;
}

/** Usage of one resource, meter and dimensions within one price segment of a period. */
export interface UsageTotal {
  resourceUid: string;
  meter: MeterName;
  dimensions: Record<string, string>;
  /** Index into the segment boundaries the query was given. */
  segment: number;
  seconds: number;
  quantity: bigint;
}

/** Usage of one project, meter and dimensions on one day (in a time zone) within one price segment. */
export interface DailyUsage {
  /** 'YYYY-MM-DD' in the time zone the query was given. */
  date: string;
  project: string;
  meter: MeterName;
  dimensions: Record<string, string>;
  /** Index into the segment boundaries the query was given. */
  segment: number;
  quantity: bigint;
}

/**
 * The usage ledger in the store: samples in, counted once (the unique key of usage_ledger), and
 * the sums that cost reports and invoices are made of.
 */
export class UsageLedger {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Records target's samples. A sample is taken only for a database that is or was on that target
   * (an agent reports for its own target only), even after its deletion finished. A sample changes its row
   * only while that row is not final and only to grow it (or make it final): one seen before, or
   * older than what the row has, is a duplicate and changes nothing.
   */
  async ingest(target: string, samples: readonly UsageSample[]): Promise<IngestResult> {
    if (samples.length === 0) return { accepted: 0, duplicates: 0, rejected: [] };
    const uids = [...new Set(samples.map((s) => s.resourceUid))];
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // Every database is registered when it is created (a trigger, 008_metering.sql).
      const { rows } = await client.query<{
        uid: string;
        org: string;
        project: string;
        lived: [number, number | null];
      }>(
        `SELECT uid, org, project,
                ARRAY[extract(epoch FROM created_at), extract(epoch FROM deleted_at)]::float8[] AS lived
           FROM metered_resources WHERE uid = ANY($1::uuid[]) AND target = $2`,
        [uids, target],
      );
      const known = new Map(rows.map((r) => [r.uid, r]));
      const rejected = uids
        .filter((uid) => !known.has(uid))
        .map((resourceUid) => ({ resourceUid, reason: `no such resource on target ${target}` }));
      // A quarter-hour the resource did not live in is not its usage (a clock far off, a bug, a
      // forged report): refused, with one quarter-hour of slack on either side for clocks that differ.
      const outside = new Set<string>();
      const lived = (s: UsageSample) => {
        const [created, deleted] = known.get(s.resourceUid)!.lived;
        const ok =
          s.intervalStart + 2 * INTERVAL_SECONDS > created &&
          (deleted === null || s.intervalStart < deleted + INTERVAL_SECONDS);
        if (!ok) outside.add(s.resourceUid);
        return ok;
      };
      const inLife = samples.filter((s) => known.has(s.resourceUid) && lived(s));
      const taken = strongest(inLife);
      for (const resourceUid of outside)
        rejected.push({ resourceUid, reason: 'a quarter-hour outside the time the resource existed' });
      const inserted = await client.query(
        `INSERT INTO usage_ledger
           (target, resource_uid, org, project, meter, dimensions, dimension_key, interval_start, seconds, quantity, final)
         SELECT $1, u.uid, u.org, u.project, u.meter, u.dimensions, u.dimension_key, to_timestamp(u.start), u.seconds, u.quantity, u.final
           FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $8::bigint[], $9::int[], $10::numeric[], $11::boolean[])
             AS u(uid, org, project, meter, dimensions, dimension_key, start, seconds, quantity, final)
         ON CONFLICT (target, resource_uid, meter, dimension_key, interval_start) DO UPDATE
           SET seconds = EXCLUDED.seconds, quantity = EXCLUDED.quantity, final = EXCLUDED.final, reported_at = now()
           WHERE NOT usage_ledger.final AND EXCLUDED.seconds >= usage_ledger.seconds
             AND (EXCLUDED.seconds > usage_ledger.seconds OR EXCLUDED.final)`,
        [
          target,
          taken.map((s) => s.resourceUid),
          taken.map((s) => known.get(s.resourceUid)!.org),
          taken.map((s) => known.get(s.resourceUid)!.project),
          taken.map((s) => s.meter),
          taken.map((s) => JSON.stringify(s.dimensions)),
          taken.map((s) => dimensionKey(s.dimensions)),
          taken.map((s) => s.intervalStart),
          taken.map((s) => s.seconds),
          taken.map((s) => s.quantity),
          taken.map((s) => s.final),
        ],
      );
      await client.query('COMMIT');
      const accepted = inserted.rowCount ?? 0;
      return { accepted, duplicates: inLife.length - accepted, rejected };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * Usage of an org (or one project of it) in [boundaries[0], boundaries[last]), summed per
   * resource, meter, dimensions and segment [boundaries[i], boundaries[i+1]).
   */
  async totals(
    scope: { org: string; project?: string },
    boundaries: readonly number[],
  ): Promise<UsageTotal[]> {
    const { rows } = await this.pool.query<{
      resource_uid: string;
      meter: MeterName;
      dimensions: Record<string, string>;
      segment: number;
      seconds: string;
      quantity: string;
    }>(
      `SELECT resource_uid, meter, min(dimensions::text)::jsonb AS dimensions,
              width_bucket(interval_start, $4::timestamptz[]) - 1 AS segment,
              sum(seconds) AS seconds, sum(quantity) AS quantity
         FROM usage_ledger
        WHERE org = $1 AND ($2::text IS NULL OR project = $2)
          AND interval_start >= to_timestamp(($3::float8[])[1])
          AND interval_start < to_timestamp(($3::float8[])[array_length($3::float8[], 1)])
        GROUP BY resource_uid, meter, dimension_key, segment
        ORDER BY resource_uid, meter, dimension_key, segment`,
      [scope.org, scope.project ?? null, boundaries, boundaries.map((b) => new Date(b * 1000))],
    );
    return rows.map((r) => ({
      resourceUid: r.resource_uid,
      meter: r.meter,
      dimensions: r.dimensions,
      segment: r.segment,
      seconds: Number(r.seconds),
      quantity: BigInt(r.quantity),
    }));
  }

  /**
   * Usage of an org (or one project of it) in [boundaries[0], boundaries[last]), summed per day in
   * timeZone, project, meter, dimensions and segment (as totals() segments). A quarter-hour lies
   * within one day in every time zone, so each sample counts on exactly one day.
   */
  async days(
    scope: { org: string; project?: string },
    boundaries: readonly number[],
    timeZone: string,
  ): Promise<DailyUsage[]> {
    const { rows } = await this.pool.query<{
      date: string;
      project: string;
      meter: MeterName;
      dimensions: Record<string, string>;
      segment: number;
      quantity: string;
    }>(
      `SELECT to_char((interval_start AT TIME ZONE $5)::date, 'YYYY-MM-DD') AS date, project, meter,
              min(dimensions::text)::jsonb AS dimensions,
              width_bucket(interval_start, $4::timestamptz[]) - 1 AS segment, sum(quantity) AS quantity
         FROM usage_ledger
        WHERE org = $1 AND ($2::text IS NULL OR project = $2)
          AND interval_start >= to_timestamp(($3::float8[])[1])
          AND interval_start < to_timestamp(($3::float8[])[array_length($3::float8[], 1)])
        GROUP BY 1, project, meter, dimension_key, segment
        ORDER BY 1, project, meter, dimension_key, segment`,
      [scope.org, scope.project ?? null, boundaries, boundaries.map((b) => new Date(b * 1000)), timeZone],
    );
    return rows.map((r) => ({
      date: r.date,
      project: r.project,
      meter: r.meter,
      dimensions: r.dimensions,
      segment: r.segment,
      quantity: BigInt(r.quantity),
    }));
  }

  /** The resources of an org (or project) that existed at some time in [from, to). */
  async resources(
    scope: { org: string; project?: string },
    from: number,
    to: number,
  ): Promise<MeteredResource[]> {
    const { rows } = await this.pool.query<{
      uid: string;
      kind: string;
      org: string;
      project: string;
      name: string;
      target: string;
      created: string;
      deleted: string | null;
    }>(
      `SELECT uid, kind, org, project, name, target,
              extract(epoch FROM created_at)::bigint AS created, extract(epoch FROM deleted_at)::bigint AS deleted
         FROM metered_resources
        WHERE org = $1 AND ($2::text IS NULL OR project = $2)
          AND created_at < to_timestamp($4) AND (deleted_at IS NULL OR deleted_at >= to_timestamp($3))
        ORDER BY project, name, created_at`,
      [scope.org, scope.project ?? null, from, to],
    );
    return rows.map((r) => ({
      uid: r.uid,
      kind: r.kind,
      org: r.org,
      project: r.project,
      name: r.name,
      target: r.target,
      createdAt: Number(r.created),
      deletedAt: r.deleted === null ? undefined : Number(r.deleted),
    }));
  }
}
