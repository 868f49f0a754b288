import type pg from 'pg';

/** One recording of an event (a repeat raises `count`), as a project's event stream shows it. */
export interface LoggedEvent {
  /** Increasing; pass the last one seen as `after` to go on from there. */
  id: string;
  involvedObject: { kind: string; project: string; name: string };
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

/**
 * How long a row may stay behind a later one. Ids are taken when an event is written, and an
 * event is one statement that commits at once, so a smaller id shows up within this time or not at all.
 */
const SETTLE_MS = 5000;

/**
 * The event log (store/migrations/011_webhooks.sql): every event recording of the last 24 hours in
 * the order they were written, per project, for `kumo events --watch` (and the webhooks' fan-out).
 */
export class EventLog {
  constructor(private readonly pool: pg.Pool) {}

  /** The last `limit` events of a project, oldest first, and the id to follow on from. */
  async latest(project: string, limit: number): Promise<{ items: LoggedEvent[]; after: string }> {
    // One statement, one snapshot: nothing written between the page and its end is skipped.
    const { rows } = await this.pool.query<Row & { after: string }>(
      `WITH m AS (SELECT COALESCE(max(id), 0) AS after FROM event_log)
       SELECT e.*, m.after FROM m
         LEFT JOIN LATERAL (SELECT * FROM event_log WHERE project = $1 AND id <= m.after ORDER BY id DESC LIMIT $2) e ON true
        ORDER BY e.id`,
      [project, limit],
    );
    const after = String(rows[0]?.after ?? '0');
    return { items: rows.filter((r) => r.id !== null).map(toEvent), after };
  }

  /**
   * Follows a project's events after `after`. Each call returns those not returned before, and
   * keeps the position below rows younger than SETTLE_MS, so one with a smaller id that commits
   * late is still returned. Not safe for concurrent use of one follower.
   */
  follow(project: string, after: string): () => Promise<LoggedEvent[]> {
    let settled = after;
    const seen = new Set<string>();
    return async () => {
      const { rows } = await this.pool.query<Row & { settled: boolean }>(
        `SELECT *, created_at < now() - make_interval(secs => $3) AS settled
           FROM event_log WHERE project = $1 AND id > $2 ORDER BY id LIMIT 1000`,
        [project, settled, SETTLE_MS / 1000],
      );
      const fresh = rows.filter((r) => !seen.has(String(r.id)));
      let prefix = true;
      for (const r of rows) {
        prefix &&= r.settled;
        if (prefix) {
          settled = String(r.id);
          seen.delete(String(r.id));
        } else seen.add(String(r.id));
      }
      return fresh.map(toEvent);
    };
  }
}

interface Row {
  id: string;
  kind: string;
  project: string;
  name: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  count: number;
  first_timestamp: Date;
  last_timestamp: Date;
}

function toEvent(r: Row): LoggedEvent {
  return {
    id: String(r.id),
    involvedObject: { kind: r.kind, project: r.project, name: r.name },
    type: r.type,
    reason: r.reason,
    message: r.message,
    count: r.count,
    firstTimestamp: r.first_timestamp.toISOString(),
    lastTimestamp: r.last_timestamp.toISOString(),
  };
}
