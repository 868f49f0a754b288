import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { PostgresConnection } from './embedded-postgres.js';

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

  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(
      typeof this.connection === 'string' ? { connectionString: this.connection } : this.connection,
    );
    client.on('notification', (n) => this.emit(n.channel, n.payload));
    client.on('error', (err) => {
      this.logger.warn({ err: err.message }, 'store notification connection lost; reconnecting');
    });
    client.on('end', () => {
      if (!this.closed) void this.reconnect();
    });
    await client.connect();
    for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
    this.client = client;
  }

  private async reconnect(attempt = 0): Promise<void> {
    await new Promise((r) => setTimeout(r, Math.min(10_000, 100 * 2 ** attempt)));
    if (this.closed) return;
    try {
      await this.connect();
      for (const channel of this.channels) this.emit(channel, undefined);
    } catch {
      void this.reconnect(attempt + 1);
    }
  }
}
