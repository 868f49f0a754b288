import type { LabelRequirement, Resource } from '@kumo/api';
import type pg from 'pg';
import { GoneError } from '../errors.js';
import { selectorToSql } from './resource-rows.js';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface Change {
  type: ChangeType;
  resourceVersion: string;
  object: Resource;
}

export interface ChangeFilter {
  kind: string;
  project?: string;
  selector?: readonly LabelRequirement[];
}

/**
 * The ordered history of every write, read by watches. Because resourceVersions become visible in
 * increasing order (see ResourceStore), "everything after N" never skips a late commit.
 */
export class ChangeLog {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Changes matching filter with resourceVersion > after, oldest first, at most limit. Throws
   * GoneError when `after` is older than the retained history.
   */
  async read(filter: ChangeFilter, after: string, limit: number): Promise<Change[]> {
    const where = ['kind = $1', 'resource_version > $2'];
    const params: unknown[] = [filter.kind, after];
    if (filter.project !== undefined) {
      params.push(filter.project);
      where.push(`project = $${params.length}`);
    }
    selectorToSql(filter.selector ?? [], "(object -> 'metadata' -> 'labels')", where, params);
    params.push(limit);
    const { rows } = await this.pool.query<{
      type: ChangeType;
      resource_version: string;
      object: Resource;
      through: string;
    }>(
      `SELECT c.type, c.resource_version, c.object, k.through
         FROM changes_compacted k
         LEFT JOIN LATERAL (SELECT * FROM changes WHERE ${where.join(' AND ')} ORDER BY resource_version LIMIT $${params.length}) c ON true`,
      params,
    );
    const through = rows[0]?.through ?? '0';
    if (BigInt(after) < BigInt(through)) {
      throw new GoneError(
        `resourceVersion ${after} is older than the retained change history (kept from ${through}). List again and watch from the list's resourceVersion.`,
      );
    }
    return rows
      .filter((r) => r.resource_version !== null)
      .map((r) => ({ type: r.type, resourceVersion: String(r.resource_version), object: r.object }));
  }

  /** Deletes changes older than maxAgeMs, remembering the newest deleted resourceVersion. Idempotent. */
  async compact(maxAgeMs: number): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `WITH gone AS (DELETE FROM changes WHERE created_at < now() - make_interval(secs => $1) RETURNING resource_version),
            mark AS (UPDATE changes_compacted SET through = GREATEST(through, (SELECT max(resource_version) FROM gone))
                     WHERE EXISTS (SELECT 1 FROM gone))
       SELECT count(*) AS n FROM gone`,
      [maxAgeMs / 1000],
    );
    return Number(rows[0]!.n);
  }
}
