import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { PostgresConnection } from './embedded-postgres.js';

const CONNECT_TIMEOUT_MS = 5000;
/** Reconnects back off from 100 ms, doubling, to this: a store that came back is heard again soon. */
const MAX_RECONNECT_DELAY_MS = 5000;

/**
 * One LISTEN connection shared by everything in the process that waits for the store
 * (watches, the outbox relay). Emits the channel name with the payload. When the connection drops
 * it reconnects with backoff and then emits every channel with payload undefined, because
 * notifications sent meanwhile are lost: listeners must re-read, never trust a payload to be complete.
 */
export class Notifier extends EventEmitter {
  private client: pg.Client | undefined;
  private closed = false;
  private readonly channels: readonly string[];

  constructor(
    private readonly connection: PostgresConnection | string,
    channels: readonly string[],
    private readonly logger: Logger,
  ) {
    super();
    this.setMaxListeners(0);
    this.channels = channels;
  }

  /** Connects and listens. Throws if the store cannot be reached now (no retry: start is at boot). */
  async start(): Promise<void> {
    await this.connect();
  }

  /** Whether the LISTEN connection is up; false while it reconnects (notifications are then missed). */
  get listening(): boolean {
    return this.client !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
  }

  /**
   * Connects and listens. Only a connection that was established reconnects when it ends: a failed
   * attempt is retried by reconnect's own backoff, so there is never more than one attempt at a time.
   */
  private async connect(): Promise<void> {
    const client = new pg.Client({
      ...(typeof this.connection === 'string' ? { connectionString: this.connection } : this.connection),
      // A store that accepts connections but does not answer must not stall the retries, and a
      // silently vanished external store must be noticed on an idle connection.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    });
    client.on('notification', (n) => this.emit(n.channel, n.payload));
    client.on('error', (err) => {
      this.logger.warn({ err: err.message }, 'store notification connection lost; reconnecting');
    });
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    client.on('end', () => {
      if (this.client === client) this.client = undefined;
      if (!this.closed) void this.reconnect();
    });
  }

  private async reconnect(attempt = 0): Promise<void> {
    const delayMs = Math.min(MAX_RECONNECT_DELAY_MS, 100 * 2 ** attempt);
    await new Promise((r) => setTimeout(r, delayMs));
    if (this.closed) return;
    try {
      await this.connect();
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message, attempt: attempt + 1 },
        'store notification connection failed; retrying',
      );
      void this.reconnect(attempt + 1);
      return;
    }
    for (const channel of this.channels) this.emit(channel, undefined);
  }
}
