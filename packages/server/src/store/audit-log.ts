import type { AuditEntry } from '@kumo/api';
import type { Queryable } from './sql.js';
import type { WriteContext } from './resource-store.js';

/** Who did something, for the audit log: the same context every write carries. */
export type AuditRecord = WriteContext;

export interface AuditAction {
  action: string;
  kind: string;
  name: string;
  project?: string;
  /** The org it happened in; by default the org of `project`; null for platform-wide things. */
  org?: string | null;
}

/**
 * Appends one entry to the audit log. Resource writes append theirs inside commitWrite; this is for
 * everything else (tokens, members, users, quotas, credential reads), inside the same transaction
 * as the change it records.
 */
export async function recordAudit(client: Queryable, who: AuditRecord, what: AuditAction): Promise<void> {
  await client.query(
    `INSERT INTO audit_log (actor, token_id, action, kind, project, name, outcome, request_id, source, org)
     VALUES ($1, $2, $3, $4, $5, $6, 'success', $7, $8,
             COALESCE($9::text, (SELECT spec ->> 'org' FROM resources WHERE kind = 'Project' AND project = '' AND name = $5)))`,
    [
      who.actor,
      who.tokenId ?? null,
      what.action,
      what.kind,
      what.project ?? '',
      what.name,
      who.requestId ?? null,
      who.source ?? null,
      what.org ?? null,
    ],
  );
}

export interface AuditQuery {
  org?: string;
  kind?: string;
  project?: string;
  name?: string;
  actor?: string;
  /** false: leave out what Kumo itself did (actors system:…). */
  system?: boolean;
  since?: string;
  limit: number;
}

/** Audit entries matching every given filter, newest first. */
export async function queryAudit(client: Queryable, q: AuditQuery): Promise<AuditEntry[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  for (const [column, value] of [
    ['org', q.org],
    ['kind', q.kind],
    ['project', q.project],
    ['name', q.name],
    ['actor', q.actor],
  ] as const) {
    if (value === undefined) continue;
    params.push(value);
    where.push(`${column} = $${params.length}`);
  }
  if (q.system === false) where.push(`actor NOT LIKE 'system:%'`);
  if (q.since) {
    params.push(q.since);
    where.push(`at >= $${params.length}`);
  }
  params.push(q.limit);
  const { rows } = await client.query<{
    id: string;
    at: Date;
    org: string | null;
    actor: string;
    token_id: string | null;
    action: string;
    kind: string;
    project: string;
    name: string;
    outcome: string;
    request_id: string | null;
    source: string | null;
  }>(
    `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
  return rows.map((r) => ({
    id: String(r.id),
    at: r.at.toISOString(),
    org: r.org,
    actor: r.actor,
    tokenId: r.token_id,
    action: r.action,
    kind: r.kind,
    project: r.project,
    name: r.name,
    outcome: r.outcome,
    requestId: r.request_id,
    source: r.source,
  }));
}

/**
 * Removes Kumo's own entries (actors system:…) older than maxAgeMs, at most `batch` per call so
 * that no call holds the table for long; people's entries are kept. Returns how many it removed.
 */
export async function pruneSystemAudit(client: Queryable, maxAgeMs: number, batch = 10_000): Promise<number> {
  const { rowCount } = await client.query(
    `DELETE FROM audit_log WHERE id IN (
       SELECT id FROM audit_log
        WHERE actor LIKE 'system:%' AND at < now() - make_interval(secs => $1)
        LIMIT $2)`,
    [maxAgeMs / 1000, batch],
  );
  return rowCount ?? 0;
}
