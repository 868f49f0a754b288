import { PROBLEM_TYPES, type Problem } from '@kumo/api';
import { HTTPException } from 'hono/http-exception';
import {
  AlreadyExistsError,
  ConflictError,
  ForbiddenError,
  GoneError,
  KumoError,
  LeaseHeldError,
  LeaseLostError,
  MalformedRequestError,
  NotFoundError,
  PreconditionFailedError,
  QuotaExceededError,
  SetupError,
  TargetUnreachableError,
  UnauthenticatedError,
  ValidationError,
} from '../errors.js';
import { isStoreUnavailable } from '../store/store-errors.js';

/** Seconds an `unavailable` answer asks the client to wait before retrying (its Retry-After). */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

/** An HTTP-only error the edge itself raises (e.g. wrong Content-Type). */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly title: string,
    message: string,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const BY_CLASS: Array<[new (...args: never[]) => KumoError, number, string, string]> = [
  [ValidationError, 422, PROBLEM_TYPES.validation, 'Invalid request'],
  [MalformedRequestError, 400, PROBLEM_TYPES.malformed, 'Malformed request'],
  [NotFoundError, 404, PROBLEM_TYPES.notFound, 'Not found'],
  [AlreadyExistsError, 409, PROBLEM_TYPES.alreadyExists, 'Already exists'],
  [LeaseHeldError, 409, PROBLEM_TYPES.leaseHeld, 'Lease held by another agent'],
  [LeaseLostError, 409, PROBLEM_TYPES.leaseLost, 'Lease lost'],
  [ConflictError, 409, PROBLEM_TYPES.conflict, 'Conflict'],
  [PreconditionFailedError, 412, PROBLEM_TYPES.preconditionFailed, 'Precondition failed'],
  [GoneError, 410, PROBLEM_TYPES.gone, 'Gone'],
  [UnauthenticatedError, 401, PROBLEM_TYPES.unauthenticated, 'Unauthenticated'],
  [ForbiddenError, 403, PROBLEM_TYPES.forbidden, 'Forbidden'],
  [QuotaExceededError, 403, PROBLEM_TYPES.quotaExceeded, 'Quota exceeded'],
  [SetupError, 503, PROBLEM_TYPES.unavailable, 'Unavailable'],
  [TargetUnreachableError, 503, PROBLEM_TYPES.unavailable, 'Target unreachable'],
];

/**
 * The one mapping from errors to application/problem+json. A store that cannot be reached (see
 * isStoreUnavailable) is a retryable 503 `unavailable`, never a 500. Unknown errors become a 500
 * whose detail says nothing about internals (the log has them, under the same request id).
 */
export function toProblem(err: unknown, requestId: string | undefined): Problem {
  const base = requestId ? { requestId } : {};
  for (const [cls, status, type, title] of BY_CLASS) {
    if (err instanceof cls) {
      const errors = err instanceof ValidationError && err.fields.length > 0 ? { errors: err.fields } : {};
      const quota = err instanceof QuotaExceededError ? { quota: err.quota } : {};
      return { type, title, status, detail: err.message, ...errors, ...quota, ...base };
    }
  }
  if (err instanceof HttpProblem)
    return { type: err.type, title: err.title, status: err.status, detail: err.message, ...base };
  if (err instanceof HTTPException) {
    // Hono raises these for malformed JSON bodies and similar request-level failures.
    const status = err.status;
    const [type, title] =
      status === 413
        ? [PROBLEM_TYPES.payloadTooLarge, 'Payload too large']
        : status === 415
          ? [PROBLEM_TYPES.unsupportedMediaType, 'Unsupported media type']
          : [PROBLEM_TYPES.malformed, 'Malformed request'];
    return {
      type,
      title,
      status,
      detail: err.message.includes('JSON')
        ? 'The request body is not valid JSON. Check quoting and commas.'
        : err.message || 'The request could not be read.',
      ...base,
    };
  }
  if (isStoreUnavailable(err)) {
    return {
      type: PROBLEM_TYPES.unavailable,
      title: 'Store unavailable',
      status: 503,
      detail:
        'Kumo cannot reach its store (PostgreSQL) right now. This is temporary and the request is retryable: retry after the Retry-After delay (a create with the same Idempotency-Key is safe to repeat).',
      ...base,
    };
  }
  return {
    type: PROBLEM_TYPES.internal,
    title: 'Internal error',
    status: 500,
    detail: 'Something went wrong inside Kumo. Retry; if it persists, report it with this requestId.',
    ...base,
  };
}

/** The problem as a response. An `unavailable` problem always carries Retry-After (headers may override it). */
export function problemResponse(problem: Problem, headers: Record<string, string> = {}): Response {
  const retryAfter: Record<string, string> =
    problem.type === PROBLEM_TYPES.unavailable
      ? { 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) }
      : {};
  return new Response(JSON.stringify(problem), {
    status: problem.status,
    headers: {
      'content-type': 'application/problem+json',
      ...(problem.requestId ? { 'x-request-id': problem.requestId } : {}),
      ...retryAfter,
      ...headers,
    },
  });
}
