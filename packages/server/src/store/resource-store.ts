import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { API_VERSION, type LabelRequirement, type Resource } from '@kumo/api';
import type pg from 'pg';
import {
  AlreadyExistsError,
  ConflictError,
  MalformedRequestError,
  NotFoundError,
  PreconditionFailedError,
} from '../errors.js';
import {
  type ResourceKey,
  type ResourceRow,
  formatKey,
  rowToResource,
  selectorToSql,
} from './resource-rows.js';
import { commitWrite } from './commit-write.js';
import { type Queryable, isUniqueViolation, withTransaction } from './sql.js';

/** Who made a change; written to the audit log with it. */
export interface WriteContext {
  actor: string;
  tokenId?: string;
  requestId?: string;
  source?: string;
}

export interface CreateInput {
  name: string;
  labels: Record<string, string>;
  finalizers: string[];
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** The writable part of a resource, as a mutation returns it; omitted fields stay as they are. */
export interface Mutation {
  labels?: Record<string, string>;
  finalizers?: string[];
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export interface Idempotency {
  principal: string;
  key: string;
  requestHash: string;
}

/**
 * Limits a list to what a caller may see. For orgs: these names. For projects: those of `orgs`,
 * and the single projects given as "org/project" (a membership narrowed to some projects).
 */
export type ListScope = { names: string[] } | { orgs: string[]; orgProjects: string[] };

/** Refuses a write inside its transaction (e.g. an agent's fence that is no longer current); throws to refuse. */
export type WriteGuard = (client: Queryable) => Promise<void>;

/** Checks a write against limits (quotas) inside its transaction; throws to refuse it. */
export type Admission = (
  client: Queryable,
  before: Resource | undefined,
  spec: Record<string, unknown>,
) => Promise<void>;

export interface ListOptions {
  project?: string;
  only?: ListScope;
  selector?: readonly LabelRequirement[];
  limit: number;
  /** Opaque token from a previous page. */
  continue?: string;
}

export interface ListResult {
  items: Resource[];
  /** Watch from here to miss nothing that happened after this list. */
  resourceVersion: string;
  continue?: string;
}

export type DeleteResult = { resource: Resource; gone: boolean };

/**
 * Durable storage of resources. Every write is one transaction that also appends to the change log
 * (watch), the outbox (bus) and the audit log, and takes the next resourceVersion last, holding its
 * row lock until commit, so resourceVersions become visible strictly in order. All methods are
 * safe to call concurrently; none retries.
 */
export class ResourceStore {
  constructor(private readonly pool: pg.Pool) {}

  /** For reads beside the store's own (placement's sums). */
  get queryable(): Queryable {
    return this.pool;
  }

  async get(key: ResourceKey, client: Queryable = this.pool): Promise<Resource | undefined> {
    const { rows } = await client.query<ResourceRow>(
      'SELECT * FROM resources WHERE kind = $1 AND project = $2 AND name = $3',
      [key.kind, key.project, key.name],
    );
    return rows[0] && rowToResource(rows[0]);
  }

  async list(kind: string, options: ListOptions): Promise<ListResult> {
    return withTransaction(
      this.pool,
      async (client) => {
        const where = ['kind = $1'];
        const params: unknown[] = [kind];
        if (options.project !== undefined) {
          params.push(options.project);
          where.push(`project = $${params.length}`);
        }
        selectorToSql(options.selector ?? [], 'labels', where, params);
        if (options.only) scopeToSql(options.only, where, params);
        if (options.continue) {
          const after = decodeContinue(options.continue);
          params.push(after.project, after.name);
          where.push(`(project, name) > ($${params.length - 1}, $${params.length})`);
        }
        params.push(options.limit + 1);
        const { rows } = await client.query<ResourceRow>(
          `SELECT * FROM resources WHERE ${where.join(' AND ')} ORDER BY project, name LIMIT $${params.length}`,
          params,
        );
        const rv = await client.query<{ value: string }>('SELECT value FROM resource_version');
        const page = rows.slice(0, options.limit);
        const last = page.at(-1);
        return {
          items: page.map(rowToResource),
          resourceVersion: String(rv.rows[0]!.value),
          ...(rows.length > options.limit && last
            ? { continue: encodeContinue(last.project, last.name) }
            : {}),
        };
      },
      'REPEATABLE READ',
    );
  }

  /**
   * Creates a resource. `parent`, when given, must exist and not be deleting; it is share-locked
   * so it cannot start deleting until this create commits. Throws AlreadyExistsError, NotFoundError,
   * ConflictError. With `idempotency`, the response is recorded in the same transaction.
   */
  async create(
    kind: string,
    project: string,
    input: CreateInput,
    ctx: WriteContext,
    options: { parent?: ResourceKey; idempotency?: Idempotency; admission?: Admission } = {},
  ): Promise<Resource> {
    const key = { kind, project, name: input.name };
    try {
      return await withTransaction(this.pool, async (client) => {
        if (options.parent) await lockParent(client, options.parent);
        await options.admission?.(client, undefined, input.spec);
        const now = new Date().toISOString();
        const resource = await commitWrite(
          client,
          'insert',
          {
            apiVersion: API_VERSION,
            kind,
            metadata: {
              name: input.name,
              ...(project ? { project } : {}),
              uid: randomUUID(),
              generation: 1,
              resourceVersion: '',
              createdAt: now,
              updatedAt: now,
              labels: input.labels,
              finalizers: input.finalizers,
              deletionTimestamp: null,
            },
            spec: input.spec,
            status: input.status ?? {},
          },
          ctx,
          'create',
        );
        if (options.idempotency) {
          const { principal, key: idemKey, requestHash } = options.idempotency;
          await client.query(
            'INSERT INTO idempotency_keys (principal, key, request_hash, status, body) VALUES ($1, $2, $3, 201, $4)',
            [principal, idemKey, requestHash, resource],
          );
        }
        return resource;
      });
    } catch (err) {
      if (isUniqueViolation(err, 'resources_pkey')) {
        throw new AlreadyExistsError(
          `${formatKey(key)} already exists. Choose another name, or update the existing one.`,
        );
      }
      throw err;
    }
  }

  /** The stored response for an idempotency key, if a request with that key succeeded before. */
  async findIdempotent(
    principal: string,
    key: string,
  ): Promise<{ requestHash: string; status: number; body: unknown } | undefined> {
    const { rows } = await this.pool.query<{ request_hash: string; status: number; body: unknown }>(
      'SELECT request_hash, status, body FROM idempotency_keys WHERE principal = $1 AND key = $2',
      [principal, key],
    );
    const row = rows[0];
    return row && { requestHash: row.request_hash, status: row.status, body: row.body };
  }

  /**
   * Applies mutate to the current resource under a row lock. generation increases only when the
   * spec changed; a mutation that changes nothing writes nothing. When a deleting resource loses
   * its last finalizer it is removed. Throws NotFoundError, PreconditionFailedError (ifMatch), and
   * whatever mutate throws (nothing is written then).
   */
  async update(
    key: ResourceKey,
    mutate: (current: Resource) => Mutation,
    ctx: WriteContext,
    options: { ifMatch?: string; action?: string; admission?: Admission; guard?: WriteGuard } = {},
  ): Promise<Resource> {
    return withTransaction(this.pool, async (client) => {
      await options.guard?.(client);
      const current = await lockForWrite(client, key, options.ifMatch);
      const change = mutate(current);
      if (change.spec && options.admission) await options.admission(client, current, change.spec);
      const next = {
        labels: change.labels ?? current.metadata.labels,
        finalizers: change.finalizers ?? current.metadata.finalizers,
        spec: change.spec ?? current.spec,
        status: change.status ?? current.status,
      };
      const deleting = current.metadata.deletionTimestamp !== null;
      const addsFinalizer = next.finalizers.some((f) => !current.metadata.finalizers.includes(f));
      if (deleting && addsFinalizer) {
        throw new ConflictError(`${formatKey(key)} is being deleted; finalizers can no longer be added.`);
      }
      const specChanged = !isDeepStrictEqual(current.spec, next.spec);
      const unchanged =
        !specChanged &&
        isDeepStrictEqual(current.metadata.labels, next.labels) &&
        isDeepStrictEqual(current.metadata.finalizers, next.finalizers) &&
        isDeepStrictEqual(current.status, next.status);
      if (unchanged) return current;
      if (deleting && next.finalizers.length === 0) return removeRow(client, current, ctx);
      const updated: Resource = {
        ...current,
        metadata: {
          ...current.metadata,
          labels: next.labels,
          finalizers: next.finalizers,
          generation: current.metadata.generation + (specChanged ? 1 : 0),
          updatedAt: new Date().toISOString(),
        },
        spec: next.spec,
        status: next.status,
      };
      return commitWrite(client, 'update', updated, ctx, options.action ?? 'update');
    });
  }

  /**
   * Starts deletion. Without finalizers the resource is removed at once (gone: true); otherwise
   * deletionTimestamp is set, phase becomes Deleting, and whoever owns a finalizer removes it when
   * done. Idempotent: deleting a deleting resource returns it unchanged.
   */
  async delete(
    key: ResourceKey,
    ctx: WriteContext,
    options: { ifMatch?: string } = {},
  ): Promise<DeleteResult> {
    return withTransaction(this.pool, async (client) => {
      const current = await lockForWrite(client, key, options.ifMatch);
      if (current.metadata.deletionTimestamp) return { resource: current, gone: false };
      if (current.metadata.finalizers.length === 0) {
        return { resource: await removeRow(client, current, ctx), gone: true };
      }
      const now = new Date().toISOString();
      const deleting: Resource = {
        ...current,
        metadata: { ...current.metadata, deletionTimestamp: now, updatedAt: now },
        status: { ...current.status, phase: 'Deleting' },
      };
      return { resource: await commitWrite(client, 'update', deleting, ctx, 'delete'), gone: false };
    });
  }

  /** Keys of every resource of a kind (for periodic resync), optionally in one project. */
  async keys(kind: string, project?: string): Promise<ResourceKey[]> {
    const { rows } = await this.pool.query<ResourceKey>(
      `SELECT kind, project, name FROM resources WHERE kind = $1 ${project === undefined ? '' : 'AND project = $2'}`,
      project === undefined ? [kind] : [kind, project],
    );
    return rows;
  }

  /** Keys of the resources in a project (any kind), or of a kind whose spec field equals a value. */
  async findKeys(
    filter: { project: string } | { kind: string; specField: string; equals: string },
  ): Promise<ResourceKey[]> {
    const { rows } =
      'project' in filter
        ? await this.pool.query<ResourceKey>(
            'SELECT kind, project, name FROM resources WHERE project = $1 ORDER BY kind, name',
            [filter.project],
          )
        : await this.pool.query<ResourceKey>(
            'SELECT kind, project, name FROM resources WHERE kind = $1 AND spec ->> $2 = $3 ORDER BY name',
            [filter.kind, filter.specField, filter.equals],
          );
    return rows;
  }
}

function scopeToSql(only: ListScope, where: string[], params: unknown[]): void {
  if ('names' in only) {
    params.push(only.names);
    where.push(`name = ANY($${params.length})`);
    return;
  }
  params.push(only.orgs, only.orgProjects);
  where.push(
    `(spec ->> 'org' = ANY($${params.length - 1}) OR (spec ->> 'org') || '/' || name = ANY($${params.length}))`,
  );
}

/** The same test as the SQL of a ListScope, for watch streams. */
export function inListScope(resource: Resource, only: ListScope): boolean {
  if ('names' in only) return only.names.includes(resource.metadata.name);
  const org = String(resource.spec.org);
  return only.orgs.includes(org) || only.orgProjects.includes(`${org}/${resource.metadata.name}`);
}

async function lockForWrite(
  client: Queryable,
  key: ResourceKey,
  ifMatch: string | undefined,
): Promise<Resource> {
  const { rows } = await client.query<ResourceRow>(
    'SELECT * FROM resources WHERE kind = $1 AND project = $2 AND name = $3 FOR UPDATE',
    [key.kind, key.project, key.name],
  );
  if (!rows[0]) throw new NotFoundError(`${formatKey(key)} does not exist.`);
  const current = rowToResource(rows[0]);
  if (ifMatch !== undefined && ifMatch !== current.metadata.resourceVersion) {
    throw new PreconditionFailedError(
      `${formatKey(key)} was changed by someone else (resourceVersion is ${current.metadata.resourceVersion}, you sent ${ifMatch}). Read it again and retry your change.`,
    );
  }
  return current;
}

async function lockParent(client: Queryable, parent: ResourceKey): Promise<void> {
  const { rows } = await client.query<{ deletion_timestamp: Date | null }>(
    'SELECT deletion_timestamp FROM resources WHERE kind = $1 AND project = $2 AND name = $3 FOR SHARE',
    [parent.kind, parent.project, parent.name],
  );
  if (!rows[0]) throw new NotFoundError(`${formatKey(parent)} does not exist. Create it first.`);
  if (rows[0].deletion_timestamp) {
    throw new ConflictError(`${formatKey(parent)} is being deleted; nothing new can be created in it.`);
  }
}

/** Removes the row; the watch gets DELETED with the last state. */
function removeRow(client: Queryable, current: Resource, ctx: WriteContext): Promise<Resource> {
  const gone: Resource = {
    ...current,
    metadata: {
      ...current.metadata,
      deletionTimestamp: current.metadata.deletionTimestamp ?? new Date().toISOString(),
    },
  };
  return commitWrite(client, 'delete', gone, ctx, 'delete');
}

function encodeContinue(project: string, name: string): string {
  return Buffer.from(JSON.stringify([project, name])).toString('base64url');
}

function decodeContinue(token: string): { project: string; name: string } {
  try {
    const [project, name] = JSON.parse(Buffer.from(token, 'base64url').toString()) as [unknown, unknown];
    if (typeof project === 'string' && typeof name === 'string' && storable(project) && storable(name))
      return { project, name };
  } catch {
    // fall through
  }
  throw new MalformedRequestError(
    'The continue token is not valid: pass the value of "continue" from the previous page unchanged.',
  );
}

/** Text PostgreSQL can compare with stored names: no NUL, no unpaired surrogate. */
function storable(text: string): boolean {
  return !/\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}
