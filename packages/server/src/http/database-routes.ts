import { type EngineInfo, type Resource, engineInfoSchema, nameSchema, problemSchema } from '@kumo/api';
import { stream } from 'hono/streaming';
import type pg from 'pg';
import { z } from 'zod';
import { engineModule } from '../engines/registry.js';
import type { HostGateway } from '../gateway/host-gateway.js';
import type { ResourceService } from '../resources/resource-service.js';
import type { CredentialStore } from '../secrets/credential-store.js';
import type { AppContext, KumoRouter } from './router.js';
import { validated } from './router.js';
import { databaseKind } from '@kumo/api';
import { recordAudit } from '../store/audit-log.js';
import { withTransaction } from '../store/sql.js';
import { writeContext } from './request-context.js';

export interface DatabaseRouteDeps {
  /** What the Ready targets offer (or one target), from what their agents reported. */
  engines: { offered(target?: string): Promise<EngineInfo[]> };
  credentials: CredentialStore;
  /** Reaches the agent of a database's target (its server's log). */
  gateway: HostGateway;
  service: ResourceService;
  pool: pg.Pool;
  streamRecheckMs: number;
}

const params = z.object({ project: nameSchema, name: nameSchema });
const base = '/v1/projects/{project}/databases/{name}';
const problem = { content: { 'application/problem+json': { schema: problemSchema } } };
export const credentialsSchema = z
  .object({
    username: z.string(),
    password: z.string(),
    database: z.string(),
    host: z.string().nullable(),
    port: z.number().int().nullable(),
    uri: z.string().nullable().meta({ description: 'null until the database has an endpoint' }),
    version: z.number().int().meta({ description: 'Increases on every rotation.' }),
  })
  .meta({ id: 'DatabaseCredentials' });

/** Engines, credentials (read, rotate) and logs of databases. */
export function registerDatabaseRoutes(router: KumoRouter, deps: DatabaseRouteDeps): void {
  router.add({
    method: 'get',
    path: '/v1/engines',
    tags: ['Engines'],
    summary:
      'Engines, versions, plans and parameters this platform can run (on its Ready targets, or on one)',
    access: { authenticated: 'the engines and plans on offer are the same for every customer' },
    request: { query: z.strictObject({ target: nameSchema.optional() }) },
    responses: {
      200: {
        description: 'The engine catalog',
        content: { 'application/json': { schema: z.object({ items: z.array(engineInfoSchema) }) } },
      },
    },
    handler: async (c) =>
      c.json({ items: await deps.engines.offered(validated<{ target?: string }>(c, 'query').target) }),
  });

  const getDatabase = async (c: AppContext): Promise<Resource> => {
    const p = validated<{ project: string; name: string }>(c, 'param');
    return deps.service.get(databaseKind, { kind: 'Database', project: p.project, name: p.name });
  };

  for (const rotate of [false, true]) {
    router.add({
      method: rotate ? 'post' : 'get',
      path: rotate ? `${base}/credentials/rotate` : `${base}/credentials`,
      tags: ['Database'],
      summary: rotate
        ? 'Replace the password (the old one stops working once applied)'
        : "The database owner's credentials",
      description: 'Every call is recorded in the audit log. The password never appears in logs or events.',
      access: { permission: 'credentials.read', in: { projectParam: 'project' } },
      request: { params },
      responses: {
        200: { description: 'Credentials', content: { 'application/json': { schema: credentialsSchema } } },
        404: { description: 'Not found', ...problem },
      },
      handler: async (c) => {
        const db = await getDatabase(c);
        // A rotation commits with its audit row and the agent's nudge: all of it, or none.
        const creds = await withTransaction(deps.pool, async (client) => {
          const made = rotate
            ? await deps.credentials.rotate(db.metadata.uid, db.metadata.name, client)
            : await deps.credentials.ensure(db.metadata.uid, db.metadata.name, client);
          await recordAudit(client, writeContext(c), {
            action: rotate ? 'rotate-credentials' : 'read-credentials',
            kind: 'Database',
            project: db.metadata.project ?? '',
            name: db.metadata.name,
          });
          // A rotation must reach the server: wake the agent as a spec change would.
          if (rotate) {
            await client.query(
              `INSERT INTO outbox (kind, project, name, generation, resource_version) VALUES ('Database', $1, $2, $3, 0)`,
              [db.metadata.project, db.metadata.name, db.metadata.generation],
            );
            await client.query(`SELECT pg_notify('kumo_outbox', '')`);
          }
          return made;
        });
        const endpoint = (db.status as { endpoint?: { host: string; port: number } }).endpoint;
        const engine = engineModule((db.spec as { engine: string }).engine);
        const uri =
          endpoint && engine
            ? engine.connectionUri({ ...endpoint, ...creds, database: db.metadata.name })
            : null;
        return c.json({
          username: creds.username,
          password: creds.password,
          database: db.metadata.name,
          host: endpoint?.host ?? null,
          port: endpoint?.port ?? null,
          uri,
          version: creds.version,
        });
      },
    });
  }

  const logsQuery = z.strictObject({
    tail: z.coerce.number().int().min(0).max(10_000).default(100),
    follow: z.enum(['true', 'false', '1', '0']).optional(),
  });
  router.add({
    method: 'get',
    path: `${base}/logs`,
    tags: ['Database'],
    summary: "The server's log: the last lines, and with follow=true new lines as they come",
    access: { permission: 'logs.read', in: { projectParam: 'project' } },
    request: { params, query: logsQuery },
    responses: {
      200: { description: 'Log lines', content: { 'text/plain': { schema: z.string() } } },
      404: { description: 'Not found', ...problem },
    },
    handler: async (c) => {
      const db = await getDatabase(c);
      const q = validated<z.infer<typeof logsQuery>>(c, 'query');
      const target = String((db.spec as { target?: string }).target);
      const lines = await deps.gateway.logs(target, db.metadata.uid, q.tail);
      if (q.follow !== 'true' && q.follow !== '1') return c.text(lines.map((l) => l + '\n').join(''));
      c.header('content-type', 'text/plain; charset=utf-8');
      return stream(c, async (s) => {
        for (const line of lines) await s.write(line + '\n');
        const abort = new AbortController();
        s.onAbort(() => abort.abort());
        // A revoked token, or a member removed from the org, must not keep following.
        const rechecks = setInterval(
          () =>
            void c
              .get('recheckAccess')()
              .catch(() => abort.abort()),
          deps.streamRecheckMs,
        );
        try {
          await deps.gateway.followLogs(
            target,
            db.metadata.uid,
            (line) => void s.write(line + '\n'),
            abort.signal,
          );
        } finally {
          clearInterval(rechecks);
        }
      });
    },
  });
}
