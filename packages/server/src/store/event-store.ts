import type { Resource } from '@kumo/api';
import type pg from 'pg';
import type { ResourceKey } from './resource-rows.js';

export interface KumoEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

/** Events about resources. Repeats of the same (type, reason, message) are merged into one with a count. */
export class EventStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Records an event. Never throws for a resource that was deleted meanwhile. */
  async record(resource: Resource, type: KumoEvent['type'], reason: string, message: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO events (uid, kind, project, name, type, reason, message, first_timestamp, last_timestamp)
       VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now())
       ON CONFLICT (uid, type, reason, message) DO UPDATE SET count = events.count + 1, last_timestamp = now()`,
      [
        resource.metadata.uid,
        resource.kind,
        resource.metadata.project ?? '',
        resource.metadata.name,
        type,
        reason,
        message.slice(0, 4096),
      ],
    );
  }

  /**
   * Forgets events of resources that no longer exist (after `goneAfterMs`) and any older than
   * `maxAgeMs`. Returns how many were removed. Idempotent.
   */
  async prune(options: { goneAfterMs: number; maxAgeMs: number }): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM events e
        WHERE e.last_timestamp < now() - make_interval(secs => $2)
           OR (e.last_timestamp < now() - make_interval(secs => $1) AND NOT EXISTS (SELECT 1 FROM resources r WHERE r.uid = e.uid))`,
      [options.goneAfterMs / 1000, options.maxAgeMs / 1000],
    );
    return rowCount ?? 0;
  }

  /** Events of the resource currently at key (by uid: a re-created name starts with none), oldest first. */
  async list(key: ResourceKey, uid: string, limit = 200): Promise<KumoEvent[]> {
    const { rows } = await this.pool.query<{
      type: KumoEvent['type'];
      reason: string;
      message: string;
      count: number;
      first_timestamp: Date;
      last_timestamp: Date;
    }>(
      `SELECT * FROM (SELECT type, reason, message, count, first_timestamp, last_timestamp FROM events
        WHERE kind = $1 AND project = $2 AND name = $3 AND uid = $4 ORDER BY last_timestamp DESC, id DESC LIMIT $5) e
       ORDER BY last_timestamp, first_timestamp`,
      [key.kind, key.project, key.name, uid, limit],
    );
    return rows.map((r) => ({
      type: r.type,
      reason: r.reason,
      message: r.message,
      count: r.count,
      firstTimestamp: r.first_timestamp.toISOString(),
      lastTimestamp: r.last_timestamp.toISOString(),
    }));
  }
}
