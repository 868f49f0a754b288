import type pg from 'pg';
import type { Bus } from '../bus/bus.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../store/notifier.js';
import { withTransaction } from '../store/sql.js';

export interface OutboxRelayOptions {
  /** Rows published per transaction. Default: 100. */
  batchSize?: number;
  /** Safety-net poll when no notification arrives. Default: 1000 ms. */
  pollIntervalMs?: number;
  /** Told how many rows each batch published, once its transaction committed (for metrics). */
  onPublished?: (count: number) => void;
}

/**
 * Publishes outbox rows to the bus, oldest first, and deletes them once the bus accepted them — in
 * one transaction per batch, with rows locked FOR UPDATE SKIP LOCKED, so any number of relays may
 * run at once. A relay that dies mid-batch deletes nothing: the rows are published again
 * (at-least-once; the outbox id is the deduplication key).
 */
export class OutboxRelay {
  private running: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly onPublished: (count: number) => void;
  private notified = false;
  private readonly onNotify = () => {
    this.notified = true;
    this.wake?.();
  };

  constructor(
    private readonly pool: pg.Pool,
    private readonly bus: Bus,
    private readonly notifier: Notifier | undefined,
    private readonly logger: Logger,
    options: OutboxRelayOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 100;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.onPublished = options.onPublished ?? (() => undefined);
  }

  start(): void {
    this.notifier?.on('kumo_outbox', this.onNotify);
    this.running = this.loop();
  }

  /** Stops after the batch in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.notifier?.off('kumo_outbox', this.onNotify);
    this.wake?.();
    await this.running;
  }

  /** Publishes one batch. Returns how many rows it published. Rejects (and deletes nothing) if the bus does. */
  async relayBatch(): Promise<number> {
    const published = await withTransaction(this.pool, async (client) => {
      // The target says whose agent should look: a Database's own, a Backup's (where it was taken,
      // else its database's), a DatabaseUser's (its database's). Other kinds (and rows already gone) have none: the control plane's.
      const { rows } = await client.query<{
        id: string;
        kind: string;
        project: string;
        name: string;
        generation: string;
        action: string;
        target: string | null;
      }>(
        `SELECT o.id, o.kind, o.project, o.name, o.generation, o.action,
                COALESCE(r.status ->> 'target', r.spec ->> 'target', d.spec ->> 'target') AS target
         FROM outbox o
         LEFT JOIN resources r ON r.kind = o.kind AND r.project = o.project AND r.name = o.name
         LEFT JOIN resources d ON o.kind IN ('Backup', 'DatabaseUser') AND d.kind = 'Database' AND d.project = o.project AND d.name = r.spec ->> 'database'
         ORDER BY o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED`,
        [this.batchSize],
      );
      for (const row of rows) {
        await this.bus.publish({
          id: String(row.id),
          kind: row.kind,
          project: row.project,
          name: row.name,
          generation: Number(row.generation),
          action: row.action,
          ...(row.target ? { target: row.target } : {}),
        });
      }
      if (rows.length > 0)
        await client.query('DELETE FROM outbox WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
      return rows.length;
    });
    if (published > 0) this.onPublished(published);
    return published;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let published = 0;
      this.notified = false;
      try {
        published = await this.relayBatch();
        failures = 0;
      } catch (err) {
        failures++;
        this.logger.warn({ err: (err as Error).message }, 'outbox relay failed; retrying');
      }
      if (published === this.batchSize || (this.notified && failures === 0)) continue;
      const wait = failures > 0 ? Math.min(30_000, 100 * 2 ** failures) : this.pollIntervalMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
