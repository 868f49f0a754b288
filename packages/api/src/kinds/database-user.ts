import { z } from 'zod';
import { baseStatusShape } from '../conditions.js';
import { defineKind } from '../kind.js';
import { nameSchema } from '../meta.js';

/** What a database user may do: everything on its database, or only read it. */
export const databaseAccessSchema = z.enum(['read-write', 'read-only']);
export type DatabaseAccess = z.infer<typeof databaseAccessSchema>;

/**
 * A login of its own on one database, next to the database's owner credentials: for an app, a
 * person or a service binding, each revoked alone by deleting it.
 */
export const databaseUserKind = defineKind({
  kind: 'DatabaseUser',
  plural: 'databaseusers',
  scope: 'project',
  description:
    "A login of its own on one database of the project (the server's user name is u_<name>), reconciled by the agent of the database's target; its password is at …/databaseusers/{name}/credentials. Deleting it drops the user on the server and ends its sessions. Phases: Pending → Ready | Error, Deleting.",
  spec: z
    .strictObject({
      database: nameSchema.meta({ description: 'The database, in the same project. Cannot change.' }),
      access: databaseAccessSchema.default('read-write').meta({
        description:
          'read-write: what the database owner may do on its database; read-only: read its data, change nothing. Cannot change.',
      }),
    })
    .meta({ id: 'DatabaseUserSpec' }),
  status: z
    .strictObject({
      ...baseStatusShape,
      databaseUid: z
        .string()
        .optional()
        .meta({ description: 'The database it was created on (names can be reused).' }),
      username: z.string().optional().meta({ description: 'The user name on the server.' }),
    })
    .meta({ id: 'DatabaseUserStatus' }),
  immutable: ['database', 'access'],
});

/** The user name a DatabaseUser has on its server: "_" keeps it apart from owners (DNS labels). */
export function databaseUsername(name: string): string {
  return `u_${name}`;
}
