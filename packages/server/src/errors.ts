import type { FieldError } from '@kumo/api';

/**
 * Domain errors. Services throw these; exactly one mapper at the HTTP edge (http/problem.ts) turns
 * them into problem+json. Each carries a message that tells the user what to do.
 */
export abstract class KumoError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The request is well-formed but a field is invalid. */
export class ValidationError extends KumoError {
  readonly code = 'validation';
  constructor(
    message: string,
    readonly fields: FieldError[] = [],
  ) {
    super(message);
  }
}

/** The request cannot be understood (malformed JSON, a bad query parameter). */
export class MalformedRequestError extends KumoError {
  readonly code = 'malformed';
}

export class NotFoundError extends KumoError {
  readonly code = 'not-found';
}

export class AlreadyExistsError extends KumoError {
  readonly code = 'already-exists';
}

/** The request conflicts with the current state (e.g. the parent is being deleted). */
export class ConflictError extends KumoError {
  readonly code = 'conflict';
}

/** A target's lease is held by another agent that still renews it; the caller waits. */
export class LeaseHeldError extends ConflictError {
  constructor(
    message: string,
    readonly holder: string,
    readonly expiresAt: Date,
  ) {
    super(message);
  }
}

/** The caller's lease of a target was taken over or ran out: it must stop acting for the target. */
export class LeaseLostError extends ConflictError {}

/** If-Match / metadata.resourceVersion did not match the stored resourceVersion. */
export class PreconditionFailedError extends KumoError {
  readonly code = 'precondition-failed';
}

/** A watch asked for a resourceVersion older than the retained change history. */
export class GoneError extends KumoError {
  readonly code = 'gone';
}

export class UnauthenticatedError extends KumoError {
  readonly code = 'unauthenticated';
}

export class ForbiddenError extends KumoError {
  readonly code = 'forbidden';
}

/** What a refused write would have needed, for the problem+json `quota` member. */
export interface QuotaDetail {
  scope: 'org' | 'project';
  name: string;
  quota: string;
  limit: number;
  used: number;
  requested: number;
  remaining: number;
}

/** A write would take an org or project over one of its quotas. */
export class QuotaExceededError extends KumoError {
  readonly code = 'quota-exceeded';
  constructor(
    message: string,
    readonly quota: QuotaDetail,
  ) {
    super(message);
  }
}

/** What only a target's host can answer cannot be had now: its agent is away or not reachable. */
export class TargetUnreachableError extends KumoError {
  readonly code = 'target-unreachable';
}

/** A problem with the host or configuration that stops Kumo from starting; shown without a stack trace. */
export class SetupError extends KumoError {
  readonly code = 'setup';
}
