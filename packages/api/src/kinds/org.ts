import { z } from 'zod';
import { budgetSchema, budgetStatusSchema } from '../budget.js';
import { baseStatusShape } from '../conditions.js';
import { defineKind } from '../kind.js';

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const orgKind = defineKind({
  kind: 'Org',
  plural: 'orgs',
  scope: 'platform',
  description: 'An organisation: a customer of the platform. Owns projects.',
  spec: z
    .strictObject({
      displayName: z.string().max(200).optional().meta({ description: 'Human-readable name.' }),
      description: z.string().max(2000).optional(),
      timeZone: z
        .string()
        .max(64)
        .refine(isTimeZone, { message: 'must be an IANA time zone, e.g. "Europe/Berlin" or "UTC"' })
        .optional()
        .meta({
          description: 'The time zone its months are billed in (IANA, e.g. "Europe/Berlin"); default UTC.',
        }),
      budget: budgetSchema.optional().meta({
        description: 'A monthly budget for the whole org, with thresholds; none by default.',
      }),
    })
    .meta({ id: 'OrgSpec' }),
  status: z
    .strictObject({ ...baseStatusShape, budget: budgetStatusSchema.optional() })
    .meta({ id: 'OrgStatus' }),
});
