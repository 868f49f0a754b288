import { z } from 'zod';
import { budgetSchema, budgetStatusSchema } from '../budget.js';
import { baseStatusShape } from '../conditions.js';
import { defineKind } from '../kind.js';
import { nameSchema } from '../meta.js';

export const projectKind = defineKind({
  kind: 'Project',
  plural: 'projects',
  scope: 'platform',
  description:
    'A project groups databases, apps and domains of one org. Names are unique platform-wide so that /v1/projects/{project}/… URLs stay short.',
  spec: z
    .strictObject({
      org: nameSchema.meta({ description: 'The owning org. Cannot change after creation.' }),
      displayName: z.string().max(200).optional(),
      description: z.string().max(2000).optional(),
      budget: budgetSchema.optional().meta({
        description: 'A monthly budget for this project alone, with thresholds; none by default.',
      }),
    })
    .meta({ id: 'ProjectSpec' }),
  status: z
    .strictObject({ ...baseStatusShape, budget: budgetStatusSchema.optional() })
    .meta({ id: 'ProjectStatus' }),
  immutable: ['org'],
});
