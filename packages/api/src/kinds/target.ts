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
      unschedulable: z.boolean().default(false).meta({
        description:
          'Cordoned: no new databases are placed here (`kumo target cordon`); those already here stay and keep running.',
      }),
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
          fence: z
            .number()
            .int()
            .optional()
            .meta({ description: "The fencing number of the agent's lease." }),
        })
        .optional()
        .meta({ description: 'The agent that last reported for this target.' }),
      engines: z
        .array(z.strictObject({ engine: z.string(), versions: z.array(z.string()) }))
        .optional()
        .meta({
          description: 'The engines and versions its agent can run, as the agent found them installed.',
        }),
      capabilities: z
        .record(z.string(), z.boolean())
        .optional()
        .meta({ description: "The runtime driver's capabilities (supportsBackup, supportsStop, …)." }),
      capacity: z
        .strictObject({
          cpus: z.number().int(),
          memoryBytes: z.number().int(),
          diskFreeBytes: z.number().int(),
          freePorts: z.number().int(),
          instances: z.number().int(),
        })
        .optional()
        .meta({
          description: 'What the target has (CPUs, memory, free disk and ports), measured by its agent.',
        }),
    })
    .meta({ id: 'TargetStatus' }),
  immutable: ['driver'],
});
