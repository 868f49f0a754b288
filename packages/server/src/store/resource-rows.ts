import { ValidationError } from '../errors.js';
import type { Queryable } from './sql.js';
import { API_VERSION, type LabelRequirement, type Resource } from '@kumo/api';

/** Identifies one resource. project is '' for platform-scoped kinds. */
export interface ResourceKey {
  kind: string;
  project: string;
  name: string;
}

export interface ResourceRow {
  kind: string;
  project: string;
  name: string;
  uid: string;
  generation: string;
  resource_version: string;
  labels: Record<string, string>;
  finalizers: string[];
  spec: Record<string, unknown>;
  status: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  deletion_timestamp: Date | null;
}

export function rowToResource(row: ResourceRow): Resource {
  return {
    apiVersion: API_VERSION,
    kind: row.kind,
    metadata: {
      name: row.name,
      ...(row.project ? { project: row.project } : {}),
      uid: row.uid,
      generation: Number(row.generation),
      resourceVersion: String(row.resource_version),
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
      labels: row.labels,
      finalizers: row.finalizers,
      deletionTimestamp: row.deletion_timestamp ? row.deletion_timestamp.toISOString() : null,
    },
    spec: row.spec,
    status: row.status,
  };
}

export function keyOf(resource: Resource): ResourceKey {
  return { kind: resource.kind, project: resource.metadata.project ?? '', name: resource.metadata.name };
}

export function formatKey(key: ResourceKey): string {
  return key.project ? `${key.kind} ${key.project}/${key.name}` : `${key.kind} ${key.name}`;
}

/**
 * Appends SQL conditions for a label selector on the jsonb expression `labelsExpr` to `where`,
 * pushing parameters onto `params`.
 */
export function selectorToSql(
  requirements: readonly LabelRequirement[],
  labelsExpr: string,
  where: string[],
  params: unknown[],
): void {
  for (const r of requirements) {
    params.push(r.key);
    const key = `$${params.length}`;
    switch (r.operator) {
      case 'exists':
        where.push(`jsonb_exists(${labelsExpr}, ${key})`);
        break;
      case 'notexists':
        where.push(`NOT jsonb_exists(${labelsExpr}, ${key})`);
        break;
      case 'in':
        params.push(r.values);
        where.push(`(${labelsExpr} ->> ${key}) = ANY($${params.length}::text[])`);
        break;
      case 'notin':
        params.push(r.values);
        where.push(
          `(NOT jsonb_exists(${labelsExpr}, ${key}) OR NOT ((${labelsExpr} ->> ${key}) = ANY($${params.length}::text[])))`,
        );
        break;
    }
  }
}

/** The org that owns a project, or undefined when there is no such project. */
export async function orgOfProject(client: Queryable, project: string): Promise<string | undefined> {
  const { rows } = await client.query<{ org: string }>(
    "SELECT spec ->> 'org' AS org FROM resources WHERE kind = 'Project' AND project = '' AND name = $1",
    [project],
  );
  return rows[0]?.org;
}

/** Whether an org, project or other platform-scoped resource of this name exists. */
export async function platformResourceExists(
  client: Queryable,
  kind: string,
  name: string,
): Promise<boolean> {
  const { rowCount } = await client.query(
    "SELECT 1 FROM resources WHERE kind = $1 AND project = '' AND name = $2",
    [kind, name],
  );
  return (rowCount ?? 0) > 0;
}

/** Throws a ValidationError naming the field (`projects.N`) unless every project belongs to org. */
export async function requireProjectsOf(
  client: Queryable,
  org: string | undefined,
  projects: readonly string[] | null | undefined,
): Promise<void> {
  for (const [i, project] of (projects ?? []).entries()) {
    if ((await orgOfProject(client, project)) !== org) {
      throw new ValidationError(`projects[${i}]: "${project}" is not a project of org "${org}".`, [
        { field: `projects.${i}`, message: `not a project of org "${org}"` },
      ]);
    }
  }
}
