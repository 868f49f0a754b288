import { z } from 'zod';

/**
 * The machine-readable problem types (RFC 9457 `type`). Every error the API returns is one of these,
 * as application/problem+json.
 */
export const PROBLEM_TYPES = {
  validation: 'https://kumo.dev/problems/validation',
  malformed: 'https://kumo.dev/problems/malformed-request',
  unauthenticated: 'https://kumo.dev/problems/unauthenticated',
  forbidden: 'https://kumo.dev/problems/forbidden',
  notFound: 'https://kumo.dev/problems/not-found',
  alreadyExists: 'https://kumo.dev/problems/already-exists',
  conflict: 'https://kumo.dev/problems/conflict',
  leaseHeld: 'https://kumo.dev/problems/lease-held',
  leaseLost: 'https://kumo.dev/problems/lease-lost',
  preconditionFailed: 'https://kumo.dev/problems/precondition-failed',
  gone: 'https://kumo.dev/problems/gone',
  payloadTooLarge: 'https://kumo.dev/problems/payload-too-large',
  unsupportedMediaType: 'https://kumo.dev/problems/unsupported-media-type',
  methodNotAllowed: 'https://kumo.dev/problems/method-not-allowed',
  rateLimited: 'https://kumo.dev/problems/rate-limited',
  quotaExceeded: 'https://kumo.dev/problems/quota-exceeded',
  unavailable: 'https://kumo.dev/problems/unavailable',
  internal: 'https://kumo.dev/problems/internal',
} as const;
export type ProblemType = (typeof PROBLEM_TYPES)[keyof typeof PROBLEM_TYPES];

export const fieldErrorSchema = z.strictObject({
  field: z.string().meta({ description: 'Path of the offending field, e.g. "spec.storageGB".' }),
  message: z.string(),
});
export type FieldError = z.infer<typeof fieldErrorSchema>;

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().meta({ description: 'What went wrong and what to do about it.' }),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(fieldErrorSchema).optional(),
    quota: z
      .object({
        scope: z.enum(['org', 'project']),
        name: z.string(),
        quota: z.string(),
        limit: z.number().int(),
        used: z.number().int(),
        requested: z.number().int(),
        remaining: z.number().int(),
      })
      .optional()
      .meta({ description: 'With quota-exceeded: which quota, and how much is left.' }),
  })
  .meta({ id: 'Problem' });
export type Problem = z.infer<typeof problemSchema>;
