/** The error codes the OSB specification defines for the `error` field. */
export type OsbErrorCode = 'AsyncRequired' | 'ConcurrencyError' | 'RequiresApp' | 'MaintenanceInfoConflict';

/**
 * A broker answer other than success, as the OSB specification shapes it: a status, and a body
 * with `description` (and `error` for the codes it defines). Thrown by the broker, turned into a
 * response by the routes' one error handler.
 */
export class OsbError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 410 | 412 | 422 | 500 | 503,
    readonly description: string,
    readonly error?: OsbErrorCode,
  ) {
    super(description);
  }

  body(): Record<string, string> {
    return { ...(this.error ? { error: this.error } : {}), description: this.description };
  }
}

export const asyncRequired = (what: string) =>
  new OsbError(
    422,
    `${what} is asynchronous: send the request again with accepts_incomplete=true and poll last_operation.`,
    'AsyncRequired',
  );
