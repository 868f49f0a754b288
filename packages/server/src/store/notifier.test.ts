import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ensureServiceUser } from '../system/service-user.js';
import { EmbeddedPostgres, type PostgresConnection } from './embedded-postgres.js';
import { Notifier } from './notifier.js';
import { findPostgresBinaries } from './postgres-binaries.js';

// The store's own server, stopped and started again by the test.
let dir: string;
let server: EmbeddedPostgres;
let connection: PostgresConnection;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-notifier-'));
  server = new EmbeddedPostgres({
    dir,
    binaries: findPostgresBinaries({ path: process.env.PATH ?? '' }),
    user: ensureServiceUser('kumo'),
    database: 'postgres',
  });
  connection = await server.start();
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function notify(channel: string, payload: string): Promise<void> {
  const client = new pg.Client(connection);
  await client.connect();
  try {
    await client.query('SELECT pg_notify($1, $2)', [channel, payload]);
  } finally {
    await client.end();
  }
}

describe('Notifier', () => {
  it('retries one connection at a time with backoff while the store is down, then listens again', async () => {
    const lines: { msg: string }[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(JSON.parse(chunk.toString()));
          done();
        },
      }),
    );
    const notifier = new Notifier(connection, ['kumo_test'], logger);
    const heard: (string | undefined)[] = [];
    notifier.on('kumo_test', (payload: string | undefined) => heard.push(payload));
    await notifier.start();
    try {
      await notify('kumo_test', 'before');
      await vi.waitFor(() => expect(heard).toContain('before'));

      await server.stop();
      await new Promise((r) => setTimeout(r, 3000));
      // Backoff from 100 ms doubling: at most 5 attempts fit in 3 s. A retry that forked a second
      // retry on every failure made thousands, until the process ran out of file descriptors.
      const failures = lines.filter((l) => l.msg === 'store notification connection failed; retrying');
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.length).toBeLessThanOrEqual(6);

      await server.start();
      // Notifications sent while it was away are lost: it says so with a payload-less emit.
      await vi.waitFor(() => expect(heard).toContain(undefined), { timeout: 30_000, interval: 100 });
      await notify('kumo_test', 'after');
      await vi.waitFor(() => expect(heard).toContain('after'));
    } finally {
      await notifier.close();
    }
  });
});
