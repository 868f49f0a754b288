import {
  type Resource,
  databaseKind,
  databaseUserKind,
  databaseUsername,
  nameSchema,
  problemSchema,
} from '@kumo/api';
import type pg from 'pg';
import { z } from 'zod';
import { engineModule } from '../engines/registry.js';
import type { ResourceService } from '../resources/resource-service.js';
import type { CredentialStore } from '../secrets/credential-store.js';
import { recordAudit } from '../store/audit-log.js';
import { credentialsSchema as databaseCredentialsSchema } from './database-routes.js';
import { type Queryable, withTransaction } from '../store/sql.js';
import type { KumoRouter } from './router.js';
import { validated } from './router.js';
import { writeContext } from './request-context.js';

export interface DatabaseUserRouteDeps {
  credentials: CredentialStore;
  service: ResourceService;
  pool: pg.Pool;
}

/** What a client needs to log in as a DatabaseUser. */
export interface UserCredentials {
  username: string;
  password: string;
  database: string;
  host: string | null;
  port: number | null;
  uri: string | null;
}

const params = z.object({ project: nameSchema, name: nameSchema });
const problem = { content: { 'application/problem+json': { schema: problemSchema } } };
// The same fields as a database's owner credentials, without the owner's rotation counter.
const credentialsSchema = databaseCredentialsSchema
  .omit({ version: true })
  .meta({ id: 'DatabaseUserCredentials' });

/**
 * The login of a DatabaseUser, its password created on first read (the agent reads the same one to
 * apply it). Pass the client of a transaction to commit the read with what records it.
 */
export async function userCredentials(
  deps: Pick<DatabaseUserRouteDeps, 'credentials' | 'service'>,
  user: Resource,
  db: Queryable,
): Promise<UserCredentials> {
  const spec = user.spec as { database: string };
  const database = await deps.service
    .get(databaseKind, { kind: 'Database', project: user.metadata.project ?? '', name: spec.database })
    .catch(() => undefined);
  const username = databaseUsername(user.metadata.name);
  const { password } = await deps.credentials.ensure(user.metadata.uid, username, db);
  const endpoint = (database?.status as { endpoint?: { host: string; port: number } } | undefined)?.endpoint;
  const engine = database && engineModule((database.spec as { engine: string }).engine);
  return {
    username,
    password,
    database: spec.database,
    host: endpoint?.host ?? null,
    port: endpoint?.port ?? null,
    uri:
      endpoint && engine
        ? engine.connectionUri({ ...endpoint, username, password, database: spec.database })
        : null,
  };
}

/** The credentials of DatabaseUsers (the kind's other routes are the generic ones). */
export function registerDatabaseUserRoutes(router: KumoRouter, deps: DatabaseUserRouteDeps): void {
  router.add({
    method: 'get',
    path: '/v1/projects/{project}/databaseusers/{name}/credentials',
    tags: ['DatabaseUser'],
    summary: "The DatabaseUser's login: it works once the user is Ready",
    description: 'Every call is recorded in the audit log. The password never appears in logs or events.',
    access: { permission: 'credentials.read', in: { projectParam: 'project' } },
    request: { params },
    responses: {
      200: { description: 'Credentials', content: { 'application/json': { schema: credentialsSchema } } },
      404: { description: 'Not found', ...problem },
    },
    handler: async (c) => {
      const p = validated<{ project: string; name: string }>(c, 'param');
      const user = await deps.service.get(databaseUserKind, { kind: 'DatabaseUser', ...p });
      const creds = await withTransaction(deps.pool, async (client) => {
        const read = await userCredentials(deps, user, client);
        await recordAudit(client, writeContext(c), {
          action: 'read-credentials',
          kind: 'DatabaseUser',
          project: p.project,
          name: p.name,
        });
        return read;
      });
      c.header('cache-control', 'no-store');
      return c.json(creds);
    },
  });
}
