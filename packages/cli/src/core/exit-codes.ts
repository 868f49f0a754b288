/** The CLI's exit codes; documented in docs/cli.md. */
export const EXIT = {
  ok: 0,
  /** A generic failure; also `kumo diff` when there are differences. */
  failure: 1,
  /** A usage mistake: unknown flag, missing argument, bad value. */
  usage: 2,
  /** The resource (or its project) does not exist. */
  notFound: 3,
  /** A conflict: the name is taken, or someone else changed it (412). */
  conflict: 4,
  /** The server rejected the input (422). */
  invalid: 5,
  /** No valid token, or the token may not do this (401/403). */
  auth: 6,
  /** The server could not be reached. */
  unreachable: 7,
  /** --wait gave up after --timeout. */
  timeout: 8,
  /** --wait saw the resource end in Error. */
  resourceFailed: 9,
  /** A quota of the org or project would be exceeded (403 quota-exceeded). */
  quotaExceeded: 10,
} as const;

/** An error the CLI reports without a stack trace and exits with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}
