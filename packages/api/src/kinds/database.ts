import { z } from 'zod';
import { baseStatusShape } from '../conditions.js';
import { defineKind } from '../kind.js';
import { engineNameSchema } from '../engines.js';
import { nameSchema } from '../meta.js';

export const aclEntrySchema = z
  .strictObject({
    cidr: z
      .union([z.cidrv4(), z.cidrv6()])
      .meta({ description: 'Allowed source network, e.g. 203.0.113.0/24.' }),
    description: z.string().max(200).optional(),
    expiresAt: z.iso
      .datetime({ offset: true })
      .nullable()
      .optional()
      .meta({ description: 'When set, the entry removes itself at this time (temporary access).' }),
  })
  .meta({ id: 'AclEntry' });

export const backupPolicySchema = z
  .strictObject({
    schedule: z.string().min(9).max(100).meta({
      description: 'A cron expression (5 fields: minute hour day month weekday), e.g. "0 3 * * *".',
      example: '0 3 * * *',
    }),
    timezone: z
      .string()
      .max(64)
      .default('UTC')
      .meta({ description: 'IANA time zone of the schedule, e.g. Europe/Berlin.' }),
    keepLast: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(7)
      .meta({ description: 'Keep this many scheduled backups.' }),
    keepDays: z.number().int().min(1).max(3650).optional().meta({
      description: 'Also remove scheduled backups older than this (the newest keepLast are kept regardless).',
    }),
    verify: z.boolean().default(false).meta({
      description:
        'Verify each scheduled backup once it succeeded: restore it into a scratch instance and compare (see POST …/backups/{name}/verify).',
    }),
  })
  .meta({ id: 'BackupPolicy', description: 'Scheduled backups and their retention.' });

/** A managed database server, run by the agent of its target. */
export const databaseKind = defineKind({
  kind: 'Database',
  plural: 'databases',
  scope: 'project',
  description: 'A managed database server of one of the engines GET /v1/engines lists.',
  spec: z
    .strictObject({
      engine: engineNameSchema.meta({
        description: 'The engine, one of those GET /v1/engines lists.',
      }),
      version: z.string().min(1).max(20).meta({ example: '15' }),
      plan: z.string().min(1).max(40).meta({ example: 'small' }),
      storageGB: z.number().int().min(1).max(16384).default(10),
      parameters: z
        .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
        .default({})
        .meta({ description: 'Engine parameters, validated against the engine list.' }),
      acl: z.array(aclEntrySchema).max(200).default([]),
      stopped: z.boolean().default(false).meta({ description: 'true stops the server (scale to zero).' }),
      target: nameSchema.optional().meta({
        description:
          'The Target whose agent runs it. Left out: placement picks a Ready, schedulable target matching targetSelector with room for the plan, and records it here. Cannot change.',
      }),
      targetSelector: z.record(z.string(), z.string()).optional().meta({
        description: 'Labels a target must have for placement to pick it (when target is left out).',
      }),
      restoreFrom: z
        .strictObject({ backup: nameSchema.meta({ description: 'A Succeeded Backup in the same project.' }) })
        .optional()
        .meta({
          description:
            'Create this database from a backup (a fork): the backup is restored into the new database; its source is untouched. Cannot change.',
        }),
      restoreInPlace: z
        .strictObject({
          backup: nameSchema,
          requestedAt: z.iso.datetime({ offset: true }),
        })
        .optional()
        .meta({
          description:
            "Replace this database's data with a backup's. Set through POST …/databases/{name}/restore; a safety backup is taken first.",
        }),
      backupPolicy: backupPolicySchema.optional(),
    })
    .meta({ id: 'DatabaseSpec' }),
  status: z
    .strictObject({
      ...baseStatusShape,
      endpoint: z.strictObject({ host: z.string(), port: z.number().int() }).optional(),
      host: z.string().optional().meta({
        description:
          'The agent installation whose host runs the server (and holds its data); another agent of the target never starts a second one.',
      }),
      credentialsVersion: z.number().int().optional().meta({
        description:
          'The credentials version the server accepts. After a rotation, the new password works once this reaches the version the rotation answered.',
      }),
      usage: z
        .strictObject({ storageBytes: z.number().int() })
        .optional()
        .meta({ description: 'Measured by the agent.' }),
      pendingRestart: z.boolean().optional().meta({ description: 'A change waits for a restart.' }),
      restore: z
        .strictObject({
          backup: z.string(),
          mode: z.enum(['fork', 'in-place']),
          state: z.enum(['Running', 'Succeeded', 'Failed']),
          requestedAt: z.string().optional(),
          safetyBackup: z.string().optional(),
          completedAt: z.string().optional(),
          durationMs: z.number().int().optional(),
          reason: z.string().optional(),
          message: z.string().optional(),
        })
        .optional()
        .meta({ description: 'The last restore into this database.' }),
      backups: z
        .strictObject({ lastScheduledAt: z.string().optional(), lastScheduledBackup: z.string().optional() })
        .optional()
        .meta({ description: 'What the backup schedule last did.' }),
    })
    .meta({ id: 'DatabaseStatus' }),
  immutable: ['engine', 'version', 'target', 'targetSelector', 'restoreFrom'],
  recorded: ['target'],
});
