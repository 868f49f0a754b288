import { z } from 'zod';
import { baseStatusShape } from '../conditions.js';
import { defineKind } from '../kind.js';

export const orgKind = defineKind({
  kind: 'Org',
  plural: 'orgs',
  scope: 'platform',
  description: 'An organisation: a customer of the platform. Owns projects.',
  spec: z
    .strictObject({
      displayName: z.string().max(200).optional().meta({ description: 'Human-readable name.' }),
      description: z.string().max(2000).optional(),
    })
    .meta({ id: 'OrgSpec' }),
  status: z.strictObject({ ...baseStatusShape }).meta({ id: 'OrgStatus' }),
});
