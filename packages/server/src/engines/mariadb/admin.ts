import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import mysql from 'mysql2/promise';
import type { EngineContext } from '../../drivers/local/local-engine.js';

export const ADMIN = 'kumo_admin'; // cannot clash with a database name: DNS labels have no "_"

/** The server's socket, pid file and configuration, all in the instance's private run/ directory. */
export function files(ctx: EngineContext) {
  return {
    socket: join(ctx.paths.run, 'mariadb.sock'),
    pid: join(ctx.paths.run, 'mariadb.pid'),
    config: join(ctx.paths.run, 'my.cnf'),
  };
}

/**
 * A client tool of the installation whose server is `ctx.location` (a tarball has it beside
 * mariadbd in bin/, Debian in /usr/bin beside /usr/sbin).
 */
export function tool(location: string, name: string): string {
  const candidates = [join(dirname(location), name), join(dirname(location), '..', 'bin', name)];
  return candidates.find((c) => existsSync(c)) ?? name;
}

/** The mysql_native_password hash of a password: what CREATE USER … IDENTIFIED BY PASSWORD takes. */
export function passwordHash(password: string): string {
  const once = createHash('sha1').update(password).digest();
  return `*${createHash('sha1').update(once).digest('hex').toUpperCase()}`;
}

/**
 * A connection over the instance's socket. Its server may die at any moment (that is what the
 * agent watches for); an idle connection then emits 'error', which must never become an uncaught
 * exception in Kumo.
 */
export async function connect(
  ctx: EngineContext,
  user: string,
  password: string,
  options: { database?: string; timeoutMs?: number } = {},
): Promise<mysql.Connection> {
  const connection = await mysql.createConnection({
    socketPath: files(ctx).socket,
    user,
    password,
    ...(options.database ? { database: options.database } : {}),
    connectTimeout: options.timeoutMs ?? 10_000,
    charset: 'utf8mb4_general_ci',
    supportBigNumbers: true,
  });
  connection.on('error', () => undefined); // the pending or next query fails, and that is reported
  return connection;
}

/**
 * A connected admin client. When the recorded password is refused and a new one was recorded (a
 * crash between recording it and saving that the server took it), the new one is tried and, when
 * it works, kept.
 */
export async function connectAdmin(ctx: EngineContext, timeoutMs?: number): Promise<mysql.Connection> {
  let connection: mysql.Connection;
  try {
    connection = await connect(ctx, ADMIN, ctx.state.adminPassword, { timeoutMs });
  } catch (err) {
    const next = ctx.state.adminPasswordNext;
    if ((err as { code?: string }).code !== 'ER_ACCESS_DENIED_ERROR' || !next) throw err;
    connection = await connect(ctx, ADMIN, next, { timeoutMs });
    ctx.state.adminPassword = next;
    delete ctx.state.adminPasswordNext;
    await ctx.saveState();
  }
  // Kumo's own sessions, whatever the customer set globally: never cut off, never logged.
  await connection.query(
    'SET SESSION max_statement_time = 0, wait_timeout = 28800, lock_wait_timeout = 60, sql_log_off = 1, log_slow_query = 0',
  );
  return connection;
}

/** Runs fn with an admin connection, closed afterwards. */
export async function withAdmin<T>(ctx: EngineContext, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const connection = await connectAdmin(ctx);
  try {
    return await fn(connection);
  } finally {
    connection.destroy();
  }
}

/** `name`@'%', the account of a database's credentials (every client arrives over the socket, through the proxy). */
export function account(username: string): string {
  return `${mysql.escape(username)}@'%'`;
}

/** The database as a grant names it: "_" and "%" are wildcards there. */
export function grantTarget(database: string): string {
  return `${mysql.escapeId(database.replace(/[_%]/g, '\\$&'))}.*`;
}
