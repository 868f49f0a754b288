import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { NotFoundError, ValidationError } from '../errors.js';
import { isStoreUnavailable } from './store-errors.js';

/** The rejection of a promise that must reject. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function connectError(config: pg.ClientConfig): Promise<unknown> {
  const client = new pg.Client({ user: 'kumo', password: 'x', database: 'kumo', ...config });
  client.on('error', () => undefined);
  return rejectionOf(client.connect());
}

// A server that accepts connections and never answers: a hung or unreachable store.
let dir: string;
let silent: Server;
const sockets: Socket[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-store-errors-'));
  silent = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(join(dir, '.s.PGSQL.5432'), resolve));
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('isStoreUnavailable', () => {
  it('recognises what node-postgres raises when the store cannot be reached', async () => {
    const cases: Array<{ reason: string; err: () => Promise<unknown> }> = [
      {
        reason: 'the embedded store is down: its Unix socket is gone (ENOENT on connect)',
        err: () => connectError({ host: join(dir, 'nothing-here') }),
      },
      {
        reason: 'an external store is down: nothing listens on its port (ECONNREFUSED)',
        err: () => connectError({ host: '127.0.0.1', port: 1 }),
      },
      {
        reason: 'the store accepts the connection but never answers (pool connection timeout)',
        err: async () => {
          const pool = new pg.Pool({
            host: dir,
            user: 'kumo',
            database: 'kumo',
            connectionTimeoutMillis: 200,
          });
          try {
            return await rejectionOf(pool.query('SELECT 1'));
          } finally {
            await pool.end();
          }
        },
      },
      {
        reason: 'every pooled connection is busy and none frees up in time (pool connect timeout)',
        err: async () => {
          const pool = new pg.Pool({ ...inject('pg'), max: 1, connectionTimeoutMillis: 200 });
          const busy = await pool.connect();
          try {
            return await rejectionOf(pool.query('SELECT 1'));
          } finally {
            busy.release();
            await pool.end();
          }
        },
      },
    ];
    for (const { reason, err } of cases) expect(isStoreUnavailable(await err()), reason).toBe(true);
  });

  it('recognises a connection the store closed: admin shutdown, then a client that is not queryable', async () => {
    const server = inject('pg');
    const victim = new pg.Client(server);
    const killer = new pg.Client(server);
    victim.on('error', () => undefined);
    await victim.connect();
    await killer.connect();
    try {
      const { rows } = await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const sleeping = rejectionOf(victim.query('SELECT pg_sleep(30)'));
      await killer.query(
        "SELECT pg_terminate_backend($1) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
        [rows[0]!.pid],
      );
      const terminated = (await sleeping) as { code?: string };
      expect(terminated.code).toBe('57P01');
      expect(isStoreUnavailable(terminated)).toBe(true);
      const afterwards = await rejectionOf(victim.query('SELECT 1'));
      expect(isStoreUnavailable(afterwards), String(afterwards)).toBe(true);
    } finally {
      await killer.end();
      await victim.end().catch(() => undefined);
    }
  });

  it('recognises the SQLSTATEs and messages of a store that is starting, stopping or full', () => {
    const cases: Array<{ reason: string; err: unknown }> = [
      {
        reason: 'cannot_connect_now: starting up',
        err: Object.assign(new Error('starting up'), { code: '57P03' }),
      },
      { reason: 'crash_shutdown', err: Object.assign(new Error('crash of another'), { code: '57P02' }) },
      { reason: 'connection_failure (class 08)', err: Object.assign(new Error('x'), { code: '08006' }) },
      { reason: 'too_many_connections', err: Object.assign(new Error('too many'), { code: '53300' }) },
      { reason: 'the server went away mid-query', err: new Error('Connection terminated unexpectedly') },
      {
        reason: 'the pool had no connection in time',
        err: new Error('timeout exceeded when trying to connect'),
      },
      {
        reason: 'wrapped in another error',
        err: new Error('listing failed', { cause: new Error('Connection terminated unexpectedly') }),
      },
      {
        reason: 'every address refused',
        err: new AggregateError([
          Object.assign(new Error('r'), { code: 'ECONNREFUSED', syscall: 'connect' }),
        ]),
      },
    ];
    for (const { reason, err } of cases) expect(isStoreUnavailable(err), reason).toBe(true);
  });

  it('does not mistake errors of the request or of Kumo for an unavailable store', async () => {
    const cases: Array<{ reason: string; err: unknown }> = [
      { reason: 'a domain error', err: new NotFoundError('org acme not found') },
      { reason: 'a validation error', err: new ValidationError('bad name') },
      {
        reason: 'unique_violation is an answer, not an outage',
        err: Object.assign(new Error('d'), { code: '23505' }),
      },
      { reason: 'a syntax error is a bug', err: Object.assign(new Error('syntax'), { code: '42601' }) },
      {
        reason: 'a missing file is not a missing socket',
        err: await rejectionOf(readFile(join(dir, 'none'))),
      },
      { reason: 'a plain error', err: new Error('boom') },
      { reason: 'not an error at all', err: 'Connection terminated unexpectedly' },
      { reason: 'nothing', err: undefined },
    ];
    for (const { reason, err } of cases) expect(isStoreUnavailable(err), reason).toBe(false);
  });
});
