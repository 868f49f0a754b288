import { Socket } from 'node:net';
import pg from 'pg';

/**
 * Connects to a managed PostgreSQL from a chosen local source address (loopback has many: 127.0.0.2,
 * 127.0.0.3, …), to prove an ACL. Resolves the connected client; rejects as PostgreSQL refuses.
 */
export async function connectFrom(uri: string, sourceAddress: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: uri,
    connectionTimeoutMillis: 5000,
    stream: () => {
      const socket = new Socket();
      const connect = socket.connect.bind(socket) as (options: object, cb?: () => void) => Socket;
      (socket as unknown as { connect: unknown }).connect = (port: number, host: string, cb?: () => void) =>
        connect({ port, host, localAddress: sourceAddress }, cb);
      return socket;
    },
  });
  client.on('error', () => undefined); // the server may be killed on purpose by a test
  await client.connect();
  return client;
}

/** Runs one query from a source address and closes the connection. */
export async function queryFrom<T extends pg.QueryResultRow = pg.QueryResultRow>(
  uri: string,
  sourceAddress: string,
  sql: string,
): Promise<T[]> {
  const client = await connectFrom(uri, sourceAddress);
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}
