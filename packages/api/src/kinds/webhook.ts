import { z } from 'zod';
import { baseStatusShape } from '../conditions.js';
import { defineKind } from '../kind.js';

/** What a webhook can be sent: a resource's change (as a watch sees it), or an event about it. */
export const WEBHOOK_TYPES = ['ADDED', 'MODIFIED', 'DELETED', 'Event'] as const;
export type WebhookType = (typeof WEBHOOK_TYPES)[number];

/** The header a delivery is signed in: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const WEBHOOK_SIGNATURE_HEADER = 'Kumo-Signature';

/**
 * A receiver of a project's changes and events, over HTTP POST, signed with a secret Kumo makes
 * (docs/webhooks.md).
 */
export const webhookKind = defineKind({
  kind: 'Webhook',
  plural: 'webhooks',
  scope: 'project',
  description:
    "An HTTP endpoint that is sent every change and event of its project's resources, signed, at least once, in order per resource. Phases: Pending (no signing secret yet) → Ready.",
  spec: z
    .strictObject({
      url: z
        .url({ protocol: /^https?$/ })
        .max(2000)
        .meta({ description: 'Where deliveries are POSTed (http or https).' }),
      kinds: z
        .array(z.string().regex(/^[A-Z][A-Za-z]{0,62}$/, 'must be a kind, e.g. "Database"'))
        .max(20)
        .optional()
        .meta({
          description:
            'The kinds whose changes and events it is sent (e.g. ["Database", "Backup"]); default every kind in the project, the Project itself included.',
        }),
      types: z
        .array(z.enum(WEBHOOK_TYPES))
        .max(WEBHOOK_TYPES.length)
        .optional()
        .meta({ description: 'ADDED, MODIFIED, DELETED (changes) and Event (events); default all.' }),
      description: z.string().max(2000).optional(),
    })
    .meta({ id: 'WebhookSpec' }),
  status: z
    .strictObject({
      ...baseStatusShape,
      secret: z
        .strictObject({
          version: z.number().int(),
          hint: z.string().meta({ description: 'The first characters of the secret, to tell which it is.' }),
          rotatedAt: z.string(),
        })
        .optional()
        .meta({ description: 'The signing secret in use (never the secret itself).' }),
    })
    .meta({ id: 'WebhookStatus' }),
});

/** One delivery of a change or an event to a webhook, as its delivery log shows it. */
export const webhookDeliverySchema = z
  .object({
    id: z.string().meta({ description: 'The same on every attempt: a receiver deduplicates by it.' }),
    type: z.enum(WEBHOOK_TYPES),
    resource: z.object({ kind: z.string(), project: z.string(), name: z.string() }),
    state: z.enum(['Pending', 'Succeeded', 'Failed']).meta({
      description:
        'Pending: not delivered yet (retrying with backoff); Succeeded: a 2xx answer; Failed: gave up.',
    }),
    attempts: z.number().int(),
    createdAt: z.string(),
    lastAttemptAt: z.string().nullable(),
    nextAttemptAt: z.string().nullable().meta({ description: 'When it is tried next, while Pending.' }),
    lastStatus: z.number().int().nullable().meta({ description: "The receiver's last HTTP status." }),
    lastError: z.string().nullable(),
    completedAt: z.string().nullable(),
  })
  .meta({ id: 'WebhookDelivery' });
export type WebhookDelivery = z.infer<typeof webhookDeliverySchema>;
