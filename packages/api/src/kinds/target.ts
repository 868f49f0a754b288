import { z } from 'zod';
import { baseStatusShape } from '../conditions.js';
import { defineKind } from '../kind.js';

export const targetKind = defineKind({
  kind: 'Target',
  plural: 'targets',
  scope: 'platform',
  description: 'A place where workloads run, served by one or more agents. `kumo up` registers "local".',
  spec: z
    .strictObject({
      driver: z.enum(['local', 'kubernetes']).meta({ description: 'The runtime driver its agents use.' }),
      description: z.string().max(2000).optional(),
    })
    .meta({ id: 'TargetSpec' }),
  status: z
    .strictObject({
      ...baseStatusShape,
      agent: z
        .strictObject({
          id: z.string(),
          version: z.string(),
          lastHeartbeat: z.string(),
        })
        .optional()
        .meta({ description: 'The agent that last reported for this target.' }),
    })
    .meta({ id: 'TargetStatus' }),
  immutable: ['driver'],
});
