import { connectFrom, queryFrom } from '../pg-connect.js';
import type { EngineProbe, SuiteCredentials } from '../engine-suite.js';

/** The URI of the fields (not the answer's uri), so a test can change one of them. */
const uriOf = (c: SuiteCredentials) =>
  `postgresql://${encodeURIComponent(c.username)}:${encodeURIComponent(c.password)}@${c.host}:${c.port}/${encodeURIComponent(c.database)}`;

/** The shared engine suite's view of PostgreSQL: a key-value table in the customer's database. */
export const postgresProbe: EngineProbe = {
  engine: 'postgres',
  put: async (c, from, key, value) => {
    const client = await connectFrom(uriOf(c), from);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS kv (k text PRIMARY KEY, v text)');
      await client.query('INSERT INTO kv VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v', [
        key,
        value,
      ]);
    } finally {
      await client.end();
    }
  },
  get: async (c, from, key) => {
    const client = await connectFrom(uriOf(c), from);
    try {
      const { rows } = await client.query<{ v: string }>('SELECT v FROM kv WHERE k = $1', [key]);
      return rows[0]?.v;
    } finally {
      await client.end();
    }
  },
  administerRefused: async (c, from) =>
    queryFrom(uriOf(c), from, "ALTER SYSTEM SET work_mem = '1MB'").then(
      () => false,
      (err: Error) => /permission denied|must be superuser/.test(err.message),
    ),
  reload: {
    parameters: { work_mem: 8192 },
    running: async ({ credentials }) =>
      (await queryFrom<{ work_mem: string }>(uriOf(credentials), '127.0.0.2', 'SHOW work_mem'))[0]!.work_mem,
    expect: '8MB',
  },
  restart: {
    parameters: { max_connections: 42 },
    running: async ({ credentials }) =>
      (
        await queryFrom<{ max_connections: string }>(uriOf(credentials), '127.0.0.2', 'SHOW max_connections')
      )[0]!.max_connections,
    expect: '42',
  },
  planLimit: { parameters: { shared_buffers: 512 }, field: 'spec.parameters.shared_buffers' },
  pidFiles: ['data/postmaster.pid'],
};
