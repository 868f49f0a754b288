import { connect as tcp } from 'node:net';
import mysql from 'mysql2/promise';
import type { EngineProbe, SuiteCredentials } from '../engine-suite.js';

/**
 * A connection as the customer, over TCP from a chosen local source address (mysql2 keeps its own
 * localAddress option but never uses it, so the socket is made here).
 */
async function connect(c: SuiteCredentials, from: string): Promise<mysql.Connection> {
  const conn = await mysql.createConnection({
    stream: () => tcp({ host: c.host, port: c.port, localAddress: from }),
    user: c.username,
    password: c.password,
    database: c.database,
    connectTimeout: 5000,
  });
  conn.on('error', () => undefined);
  return conn;
}

async function query(c: SuiteCredentials, from: string, sql: string, values: unknown[] = []) {
  const conn = await connect(c, from);
  try {
    const [rows] = await conn.query(sql, values);
    return rows as Array<Record<string, unknown>>;
  } finally {
    await conn.end();
  }
}

/** The shared engine suite's view of MariaDB: a key-value table in the customer's database. */
export const mariadbProbe: EngineProbe = {
  engine: 'mariadb',
  put: async (c, from, key, value) => {
    const conn = await connect(c, from);
    try {
      await conn.query('CREATE TABLE IF NOT EXISTS kv (k VARCHAR(100) PRIMARY KEY, v TEXT) ENGINE=InnoDB');
      await conn.query('REPLACE INTO kv VALUES (?, ?)', [key, value]);
    } finally {
      await conn.end();
    }
  },
  get: async (c, from, key) => {
    const rows = await query(c, from, 'SELECT v FROM kv WHERE k = ?', [key]);
    return rows[0]?.v as string | undefined;
  },
  administerRefused: async (c, from) =>
    query(c, from, 'SET GLOBAL max_connections = 11').then(
      () => false,
      (err: Error) => /denied|privilege/i.test(err.message),
    ),
  reload: {
    parameters: { long_query_time: 5 },
    running: async ({ credentials }) =>
      String(Number((await query(credentials, '127.0.0.2', 'SELECT @@GLOBAL.long_query_time AS v'))[0]!.v)),
    expect: '5',
  },
  restart: {
    parameters: { innodb_ft_min_token_size: 5 },
    running: async ({ credentials }) =>
      String((await query(credentials, '127.0.0.2', 'SELECT @@GLOBAL.innodb_ft_min_token_size AS v'))[0]!.v),
    expect: '5',
  },
  planLimit: {
    parameters: { innodb_buffer_pool_size: 1024 },
    field: 'spec.parameters.innodb_buffer_pool_size',
  },
  pidFiles: ['run/mariadb.pid', 'run/acl-proxy.pid'],
};
