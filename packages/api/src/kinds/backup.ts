import { z } from 'zod';
import { baseStatusShape } from '../conditions.js';
import { defineKind } from '../kind.js';
import { engineNameSchema } from '../engines.js';
import { nameSchema } from '../meta.js';

const tableFacts = z.strictObject({ name: z.string(), rows: z.number().int(), checksum: z.string() });

/** A backup of one database, in the platform's object store. */
export const backupKind = defineKind({
  kind: 'Backup',
  plural: 'backups',
  scope: 'project',
  description:
    'A backup of one database, streamed into the object store and checked there. Phases: Pending → Running → Succeeded | Failed.',
  spec: z
    .strictObject({
      database: nameSchema.meta({
        description: 'The database to back up, in the same project. Cannot change.',
      }),
      verifyRequestedAt: z.iso.datetime({ offset: true }).optional().meta({
        description: 'Set by POST …/backups/{name}/verify: restore into a scratch instance and compare.',
      }),
    })
    .meta({ id: 'BackupSpec' }),
  status: z
    .strictObject({
      ...baseStatusShape,
      databaseUid: z
        .string()
        .optional()
        .meta({ description: 'The database it was taken of (names can be reused).' }),
      target: z.string().optional(),
      engine: engineNameSchema.optional(),
      version: z.string().optional(),
      plan: z.string().optional().meta({
        description:
          "The database's plan when it was taken: verification restores into a scratch instance of it.",
      }),
      startedAt: z.string().optional(),
      completedAt: z.string().optional(),
      attempts: z.number().int().optional().meta({
        description:
          'How many times taking it started. One a crash of Kumo interrupted is taken again, up to 3 times.',
      }),
      object: z
        .strictObject({
          store: z.string(),
          key: z.string(),
          size: z.number().int(),
          sha256: z.string(),
          etag: z.string(),
          format: z.string(),
        })
        .optional(),
      tool: z.string().optional().meta({ description: 'The dump tool and its version.' }),
      tables: z.array(tableFacts).optional().meta({
        description:
          'What the dump holds, taken with it: row counts and checksums per table, or keys per logical database, as the engine measures.',
      }),
      verification: z
        .strictObject({
          state: z.enum(['Running', 'Passed', 'Failed']),
          requestedAt: z.string(),
          verifiedAt: z.string().optional(),
          restoreDurationMs: z.number().int().optional(),
          message: z.string(),
        })
        .optional(),
    })
    .meta({ id: 'BackupStatus' }),
  immutable: ['database'],
});
