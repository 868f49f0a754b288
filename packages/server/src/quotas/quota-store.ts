import { QUOTA_NAMES, type QuotaName, type QuotaReport } from '@kumo/api';
import type pg from 'pg';
import { QuotaExceededError } from '../errors.js';
import { type AuditRecord, recordAudit } from '../store/audit-log.js';
import { type Queryable, withTransaction } from '../store/sql.js';

/** A limit per quota; null means no limit at this level (a project is still bounded by its org). */
export type Limits = Record<QuotaName, number | null>;
export type Usage = Record<QuotaName, number>;
export type QuotaScope = 'org' | 'project';

const NO_LIMITS: Limits = { databases: null, storageGB: null, backups: null };

/**
 * Quotas per org and per project, and their usage, counted from the resources themselves (so usage
 * cannot drift). Admission takes a per-org lock inside the write's transaction, so two concurrent
 * creates cannot both take the last unit.
 */
export class QuotaStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly orgDefaults: Limits,
  ) {}

  async limits(scope: QuotaScope, name: string, client: Queryable = this.pool): Promise<Limits> {
    const { rows } = await client.query<{
      databases: number | null;
      storage_gb: number | null;
      backups: number | null;
    }>('SELECT databases, storage_gb, backups FROM quotas WHERE scope = $1 AND name = $2', [scope, name]);
    const row = rows[0];
    if (!row) return scope === 'org' ? { ...this.orgDefaults } : { ...NO_LIMITS };
    return { databases: row.databases, storageGB: row.storage_gb, backups: row.backups };
  }

  /** Replaces the limits of an org or project (fields left out keep their current value). */
  async set(scope: QuotaScope, name: string, change: Partial<Limits>, audit: AuditRecord, org: string) {
    await withTransaction(this.pool, async (client) => {
      const next = { ...(await this.limits(scope, name, client)), ...change };
      await client.query(
        `INSERT INTO quotas (scope, name, databases, storage_gb, backups) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (scope, name) DO UPDATE SET databases = $3, storage_gb = $4, backups = $5`,
        [scope, name, next.databases, next.storageGB, next.backups],
      );
      await recordAudit(client, audit, {
        action: 'set-quota',
        kind: scope === 'org' ? 'OrgQuota' : 'ProjectQuota',
        name,
        org,
        ...(scope === 'project' ? { project: name } : {}),
      });
    });
    return this.report(scope, name);
  }

  async usage(scope: QuotaScope, name: string, client: Queryable = this.pool): Promise<Usage> {
    const projects =
      scope === 'project'
        ? 'SELECT $1::text'
        : "SELECT name FROM resources WHERE kind = 'Project' AND project = '' AND spec ->> 'org' = $1";
    const { rows } = await client.query<{ databases: number; storage_gb: number; backups: number }>(
      `SELECT count(*) FILTER (WHERE kind = 'Database')::int AS databases,
              COALESCE(sum((spec ->> 'storageGB')::int) FILTER (WHERE kind = 'Database'), 0)::int AS storage_gb,
              count(*) FILTER (WHERE kind = 'Backup')::int AS backups
       FROM resources WHERE project IN (${projects})`,
      [name],
    );
    const r = rows[0]!;
    return { databases: r.databases, storageGB: r.storage_gb, backups: r.backups };
  }

  async report(scope: QuotaScope, name: string): Promise<QuotaReport> {
    const [limits, usage] = await Promise.all([this.limits(scope, name), this.usage(scope, name)]);
    return {
      scope,
      name,
      items: QUOTA_NAMES.map((quota) => ({
        quota,
        limit: limits[quota],
        used: usage[quota],
        remaining: limits[quota] === null ? null : Math.max(0, limits[quota]! - usage[quota]),
      })),
    };
  }

  /**
   * Refuses a write that would take a project or its org over a quota. `delta` is what the write
   * adds (a new database: 1 database and its storage). Call inside the write's transaction.
   */
  async admit(client: Queryable, org: string, project: string, delta: Partial<Usage>): Promise<void> {
    if (!QUOTA_NAMES.some((q) => (delta[q] ?? 0) > 0)) return;
    await client.query("SELECT pg_advisory_xact_lock(hashtext('kumo-quota:' || $1))", [org]);
    for (const [scope, name] of [
      ['project', project],
      ['org', org],
    ] as const) {
      const [limits, usage] = await Promise.all([
        this.limits(scope, name, client),
        this.usage(scope, name, client),
      ]);
      for (const quota of QUOTA_NAMES) {
        const adding = delta[quota] ?? 0;
        const limit = limits[quota];
        if (adding <= 0 || limit === null || usage[quota] + adding <= limit) continue;
        const remaining = Math.max(0, limit - usage[quota]);
        throw new QuotaExceededError(
          `This would exceed the ${quota} quota of ${scope} "${name}": the limit is ${limit}, ${usage[quota]} used, ${remaining} left, and this needs ${adding}. Free some up, or ask ${scope === 'org' ? 'the platform operator' : 'an org owner or admin'} to raise it.`,
          { scope, name, quota, limit, used: usage[quota], requested: adding, remaining },
        );
      }
    }
  }

  async forget(scope: QuotaScope, name: string): Promise<void> {
    await this.pool.query('DELETE FROM quotas WHERE scope = $1 AND name = $2', [scope, name]);
  }
}

/** What a change of a Database spec adds to quota usage. */
export function databaseDelta(
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown>,
): Partial<Usage> {
  const storage = (spec: Record<string, unknown> | undefined) =>
    typeof spec?.storageGB === 'number' ? spec.storageGB : 0;
  return { databases: before ? 0 : 1, storageGB: storage(after) - storage(before) };
}
