import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { EmbeddedPostgres, type PostgresConnection, quoteIdent } from '../store/embedded-postgres.js';
import { findPostgresBinaries } from '../store/postgres-binaries.js';
import { ensureServiceUser } from '../system/service-user.js';

/**
 * A PostgreSQL server of the test run's own (never the machine's running service): a temporary
 * directory, a private Unix socket, started with the same code as Kumo's embedded store.
 */
export async function startTestPostgres(searchPath: string): Promise<{
  connection: PostgresConnection;
  stop: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-test-pg-'));
  await chmod(dir, 0o711);
  const embedded = new EmbeddedPostgres({
    dir,
    binaries: findPostgresBinaries({ path: searchPath }),
    user: ensureServiceUser('kumo'),
    database: 'postgres',
  });
  const connection = await embedded.start();
  return {
    connection,
    stop: async () => {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A new, empty database on the test server; returns its connection URL. */
export async function createTestDatabase(server: PostgresConnection): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client(server);
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } finally {
    await client.end();
  }
  return connectionUrl({ ...server, database: name });
}

export function connectionUrl(c: PostgresConnection): string {
  const auth = `${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}`;
  return `postgresql://${auth}@localhost/${encodeURIComponent(c.database)}?host=${encodeURIComponent(c.host)}`;
}
