import type { WebhookType } from '@kumo/api';
import type pg from 'pg';
import { withTransaction } from '../store/sql.js';

const BATCH = 500;

/** What one delivery is about: a resource's change or an event, with what its body carries. */
interface Occurrence {
  type: WebhookType;
  kind: string;
  /** The project it belongs to (a Project's own changes belong to it). */
  project: string;
  name: string;
  at: Date;
  /** `object` (a change's object as written) or `event` (the event as recorded). */
  payload: Record<string, unknown>;
}

interface Hook {
  uid: string;
  project: string;
  createdAt: Date;
  spec: { kinds?: string[]; types?: WebhookType[] };
}

/**
 * Turns the change log and the event log into deliveries, one per matching webhook. One pass at a
 * time platform-wide (it holds the cursor row's lock; a replica that finds it locked does nothing),
 * which numbers the deliveries of each resource in the order its changes were made. Reading and
 * writing happen in one transaction, so a crash repeats a pass, never half of one. Receivers are
 * never involved here: writes and fan-out wait for nobody.
 */
export class WebhookFanout {
  constructor(
    private readonly pool: pg.Pool,
    /** How long a delivery is tried before it is given up. */
    private readonly giveUpMs: number,
  ) {}

  /** One batch. Returns how many changes and events it read (BATCH: there may be more). */
  async pass(): Promise<number> {
    return withTransaction(this.pool, async (client) => {
      const cursor = await client.query<{ through: string }>(
        'SELECT through FROM webhook_cursor FOR UPDATE SKIP LOCKED',
      );
      if (!cursor.rows[0]) return 0;
      const changes = await client.query<{
        resource_version: string;
        kind: string;
        project: string;
        name: string;
        type: 'ADDED' | 'MODIFIED' | 'DELETED';
        object: Record<string, unknown>;
        created_at: Date;
      }>('SELECT * FROM changes WHERE resource_version > $1 ORDER BY resource_version LIMIT $2', [
        cursor.rows[0].through,
        BATCH,
      ]);
      const events = await client.query<{
        id: string;
        kind: string;
        project: string;
        name: string;
        type: string;
        reason: string;
        message: string;
        count: number;
        first_timestamp: Date;
        last_timestamp: Date;
        created_at: Date;
      }>('SELECT * FROM event_log WHERE NOT fanned_out ORDER BY id LIMIT $1', [BATCH]);
      const occurrences: Occurrence[] = [
        ...changes.rows.map((c) => ({
          type: c.type,
          kind: c.kind,
          project: c.kind === 'Project' && c.project === '' ? c.name : c.project,
          name: c.name,
          at: c.created_at,
          payload: { object: c.object },
        })),
        ...events.rows.map((e) => ({
          type: 'Event' as const,
          kind: e.kind,
          project: e.project,
          name: e.name,
          at: e.created_at,
          payload: {
            event: {
              type: e.type,
              reason: e.reason,
              message: e.message,
              count: e.count,
              firstTimestamp: e.first_timestamp.toISOString(),
              lastTimestamp: e.last_timestamp.toISOString(),
            },
          },
        })),
      ];
      const hooks = await webhooksOf(client, [...new Set(occurrences.map((o) => o.project))]);
      const rows = occurrences.flatMap((o) =>
        hooks
          .filter((h) => h.project === o.project && wants(h, o))
          .map((h) => ({
            webhook_uid: h.uid,
            type: o.type,
            kind: o.kind,
            project: o.project,
            name: o.name,
            payload: o.payload,
          })),
      );
      if (rows.length > 0) {
        // WITH ORDINALITY keeps the ids in the order of the changes: the per-resource order.
        await client.query(
          `INSERT INTO webhook_deliveries (webhook_uid, type, kind, project, name, payload, give_up_at)
           SELECT (r ->> 'webhook_uid')::uuid, r ->> 'type', r ->> 'kind', r ->> 'project', r ->> 'name', r -> 'payload',
                  now() + make_interval(secs => $2)
             FROM unnest($1::jsonb[]) WITH ORDINALITY AS t (r, n) ORDER BY n`,
          [rows, this.giveUpMs / 1000],
        );
        await client.query("SELECT pg_notify('kumo_webhooks', '')");
      }
      const last = changes.rows.at(-1);
      if (last) await client.query('UPDATE webhook_cursor SET through = $1', [last.resource_version]);
      if (events.rows.length > 0)
        await client.query('UPDATE event_log SET fanned_out = true WHERE id = ANY($1::bigint[])', [
          events.rows.map((e) => e.id),
        ]);
      return changes.rows.length + events.rows.length;
    });
  }

  /**
   * Forgets what is old: event log entries after `eventLogMs`, finished deliveries after
   * `deliveryLogMs`. Idempotent.
   */
  async prune(options: { eventLogMs: number; deliveryLogMs: number }): Promise<void> {
    await this.pool.query(
      'DELETE FROM event_log WHERE fanned_out AND created_at < now() - make_interval(secs => $1)',
      [options.eventLogMs / 1000],
    );
    await this.pool.query(
      `DELETE FROM webhook_deliveries WHERE state <> 'Pending' AND completed_at < now() - make_interval(secs => $1)`,
      [options.deliveryLogMs / 1000],
    );
  }
}

/** Whether a webhook is sent this: one of its kinds and types, and not from before it existed. */
function wants(hook: Hook, o: Occurrence): boolean {
  return (
    o.at >= hook.createdAt &&
    (hook.spec.kinds === undefined || hook.spec.kinds.includes(o.kind)) &&
    (hook.spec.types === undefined || hook.spec.types.includes(o.type))
  );
}

async function webhooksOf(client: pg.PoolClient, projects: string[]): Promise<Hook[]> {
  if (projects.length === 0) return [];
  const { rows } = await client.query<{
    uid: string;
    project: string;
    created_at: Date;
    spec: Hook['spec'];
  }>(
    `SELECT uid, project, created_at, spec FROM resources
      WHERE kind = 'Webhook' AND project = ANY($1) AND deletion_timestamp IS NULL`,
    [projects],
  );
  return rows.map((r) => ({ uid: r.uid, project: r.project, createdAt: r.created_at, spec: r.spec }));
}
