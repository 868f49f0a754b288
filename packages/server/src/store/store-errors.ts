/**
 * Socket errors that mean the server cannot be reached, with the system call that raised them: a
 * missing Unix socket (ENOENT on connect) is the store being down, a missing file elsewhere is not.
 */
const SOCKET_ERRORS: Record<string, readonly string[]> = {
  ECONNREFUSED: ['connect'],
  ENOENT: ['connect'],
  ECONNRESET: ['connect', 'read', 'write'],
  EPIPE: ['write'],
  ETIMEDOUT: ['connect', 'read', 'write'],
  EHOSTUNREACH: ['connect'],
  ENETUNREACH: ['connect'],
  EAI_AGAIN: ['getaddrinfo'],
};

/**
 * SQLSTATEs of a server that is going away, not up yet or refusing connections: admin_shutdown
 * (57P01, e.g. `pg_ctl stop`), crash_shutdown (57P02), cannot_connect_now (57P03: starting up,
 * shutting down, in recovery) and too_many_connections (53300). Class 08 (connection exception)
 * is matched by its prefix.
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** What node-postgres and pg-pool say, without a code, when a connection is lost or never made. */
const UNAVAILABLE_MESSAGES = [
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
];

/**
 * Whether err says that the store (PostgreSQL) cannot be reached or is not accepting work right
 * now — a condition that passes, so the request that met it can be retried — rather than that the
 * request or Kumo is wrong. Looks through `cause` chains and AggregateError members. Never throws.
 */
export function isStoreUnavailable(err: unknown): boolean {
  return matches(err, 0);
}

function matches(err: unknown, depth: number): boolean {
  if (typeof err !== 'object' || err === null || depth > 5) return false;
  const e = err as { code?: unknown; syscall?: unknown; message?: unknown; cause?: unknown };
  if (typeof e.code === 'string') {
    if (e.code.startsWith('08') && e.code.length === 5) return true;
    if (UNAVAILABLE_SQLSTATES.has(e.code)) return true;
    if (typeof e.syscall === 'string' && SOCKET_ERRORS[e.code]?.includes(e.syscall)) return true;
  }
  if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.includes(e.message)) return true;
  if (err instanceof AggregateError && err.errors.some((inner) => matches(inner, depth + 1))) return true;
  return matches(e.cause, depth + 1);
}
