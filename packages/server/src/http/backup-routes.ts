import { Readable } from 'node:stream';
import {
  type Resource,
  backupKind,
  databaseKind,
  nameSchema,
  problemSchema,
  reprDigest,
  resourceSchema,
} from '@kumo/api';
import type pg from 'pg';
import { z } from 'zod';
import { ConflictError, ValidationError } from '../errors.js';
import type { HostGateway } from '../gateway/host-gateway.js';
import type { ResourceService } from '../resources/resource-service.js';
import { engineModule } from '../engines/registry.js';
import { recordAudit } from '../store/audit-log.js';
import { writeContext } from './request-context.js';
import { type AppContext, type KumoRouter, validated } from './router.js';

export interface BackupRouteDeps {
  service: ResourceService;
  pool: pg.Pool;
  /** Reaches the agent that holds a backup's object (its target's). */
  gateway: HostGateway;
}

const params = z.object({ project: nameSchema, name: nameSchema });
const problem = { content: { 'application/problem+json': { schema: problemSchema } } };
const problems = {
  404: { description: 'Not found', ...problem },
  409: { description: 'Not possible now', ...problem },
};

/** The target whose agent took the backup (its database's, for one taken before targets were recorded). */
async function backupTarget(deps: BackupRouteDeps, backup: Resource): Promise<string> {
  const taken = (backup.status as { target?: string }).target;
  if (taken) return taken;
  const database = String((backup.spec as { database: string }).database);
  const db = await deps.service
    .get(databaseKind, { kind: 'Database', project: backup.metadata.project ?? '', name: database })
    .catch(() => undefined);
  const target = (db?.spec as { target?: string } | undefined)?.target;
  if (!target)
    throw new ConflictError(`Backup "${backup.metadata.name}" records no target; it cannot be downloaded.`);
  return target;
}

/** Verify and download backups; restore a database in place. */
export function registerBackupRoutes(router: KumoRouter, deps: BackupRouteDeps): void {
  const backupKey = (c: AppContext) => {
    const p = validated<{ project: string; name: string }>(c, 'param');
    return { kind: 'Backup', project: p.project, name: p.name };
  };
  const succeeded = async (c: AppContext): Promise<Resource> => {
    const backup = await deps.service.get(backupKind, backupKey(c));
    if (backup.status.phase !== 'Succeeded') {
      throw new ConflictError(
        `Backup "${backup.metadata.name}" is ${backup.status.phase ?? 'Pending'}; only a Succeeded backup can be used.`,
      );
    }
    return backup;
  };

  router.add({
    method: 'post',
    path: '/v1/projects/{project}/backups/{name}/verify',
    tags: ['Backup'],
    summary: 'Verify a backup: restore it into a scratch instance and compare the data',
    description:
      'Answers 202 at once; status.verification follows (Running → Passed | Failed) with the restore duration.',
    access: { permission: 'resources.write', in: { projectParam: 'project' } },
    request: { params },
    responses: {
      202: {
        description: 'Verification requested',
        content: { 'application/json': { schema: resourceSchema(backupKind) } },
      },
      ...problems,
    },
    handler: async (c) => {
      await succeeded(c);
      const patched = await deps.service.patch(
        backupKind,
        backupKey(c),
        { spec: { verifyRequestedAt: new Date().toISOString() } },
        writeContext(c),
      );
      return c.json(patched, 202);
    },
  });

  router.add({
    method: 'get',
    path: '/v1/projects/{project}/backups/{name}/download',
    tags: ['Backup'],
    summary: "Download a backup's dump, in its engine's own format (see the object's format)",
    description:
      'The dump holds all the data: it needs the permission to read credentials. Every download is audited. The Repr-Digest header (RFC 9530) carries the SHA-256 recorded when the backup was taken: check what you received against it.',
    access: { permission: 'credentials.read', in: { projectParam: 'project' } },
    request: { params },
    responses: {
      200: { description: 'The dump', content: { 'application/octet-stream': { schema: z.string() } } },
      ...problems,
    },
    handler: async (c) => {
      const backup = await succeeded(c);
      const body = await deps.gateway.openBackup(await backupTarget(deps, backup), backup);
      await recordAudit(deps.pool, writeContext(c), {
        action: 'download-backup',
        kind: 'Backup',
        project: backup.metadata.project ?? '',
        name: backup.metadata.name,
      });
      const status = backup.status as { engine?: string; object: { size: number; sha256: string } };
      const object = status.object;
      const ext = engineModule(status.engine ?? '')?.backup.extension ?? 'dump';
      return new Response(Readable.toWeb(body) as ReadableStream, {
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(object.size),
          // The SHA-256 recorded when the backup was taken (RFC 9530), for the client to check.
          'repr-digest': reprDigest(object.sha256),
          'content-disposition': `attachment; filename="${backup.metadata.name}.${ext}"`,
        },
      });
    },
  });

  const restoreBody = z
    .strictObject({
      backup: nameSchema.meta({ description: 'A Succeeded backup of this database (or of one like it).' }),
    })
    .meta({ id: 'RestoreInPlace' });
  router.add({
    method: 'post',
    path: '/v1/projects/{project}/databases/{name}/restore',
    tags: ['Database'],
    summary: 'Restore a backup INTO this database, replacing its data (a safety backup is taken first)',
    description:
      'To restore without touching this database, create a new one with spec.restoreFrom instead. Answers 202; status.restore follows.',
    access: { permission: 'resources.write', in: { projectParam: 'project' } },
    request: { params, body: { content: { 'application/json': { schema: restoreBody } }, required: true } },
    responses: {
      202: {
        description: 'Restore requested',
        content: { 'application/json': { schema: resourceSchema(databaseKind) } },
      },
      ...problems,
    },
    handler: async (c) => {
      const p = validated<{ project: string; name: string }>(c, 'param');
      const { backup: name } = validated<z.infer<typeof restoreBody>>(c, 'json');
      const db = await deps.service.get(databaseKind, { kind: 'Database', project: p.project, name: p.name });
      const backup = await deps.service
        .get(backupKind, { kind: 'Backup', project: p.project, name })
        .catch(() => {
          throw new ValidationError(`backup: no backup "${name}" in project ${p.project}.`, [
            { field: 'backup', message: `no backup "${name}" in project ${p.project}` },
          ]);
        });
      const b = backup.status as { phase?: string; engine?: string; version?: string };
      const d = db.spec as { engine: string; version: string };
      if (b.phase !== 'Succeeded')
        throw new ConflictError(
          `Backup "${name}" is ${b.phase ?? 'Pending'}; only a Succeeded backup can be restored.`,
        );
      if (b.engine !== d.engine || b.version !== d.version) {
        throw new ValidationError(
          `backup: "${name}" is of ${b.engine} ${b.version}; this database is ${d.engine} ${d.version}.`,
          [{ field: 'backup', message: `is of ${b.engine} ${b.version}, not ${d.engine} ${d.version}` }],
        );
      }
      const patched = await deps.service.patch(
        databaseKind,
        { kind: 'Database', project: p.project, name: p.name },
        { spec: { restoreInPlace: { backup: name, requestedAt: new Date().toISOString() } } },
        writeContext(c),
      );
      return c.json(patched, 202);
    },
  });
}
