import { isDeepStrictEqual } from 'node:util';
import {
  type FieldError,
  type KindDefinition,
  type LabelRequirement,
  type Resource,
  applyMergePatch,
  isPlainObject,
  resourceInputSchema,
} from '@kumo/api';
import type { ChangeDescription } from '../engines/engine-catalog.js';
import { AlreadyExistsError, NotFoundError, PreconditionFailedError, ValidationError } from '../errors.js';
import type { EventStore, KumoEvent } from '../store/event-store.js';
import type { ResourceKey } from '../store/resource-rows.js';
import type {
  Admission,
  DeleteResult,
  Mutation,
  Idempotency,
  ListResult,
  ListScope,
  ResourceStore,
  WriteContext,
} from '../store/resource-store.js';
import { PlacementRaceError } from './placement.js';
import { parseOrThrow } from './validation.js';

/** Placements tried for one create before a race with others is reported. */
const PLACEMENT_ATTEMPTS = 5;

/** Finalizers the platform puts on new resources, by kind: who must clean up before they go. */
export const PLATFORM_FINALIZERS: Readonly<Record<string, string[]>> = {
  Org: ['kumo.dev/org-projects'],
  Project: ['kumo.dev/project-resources'],
  Database: ['kumo.dev/runtime'],
  Backup: ['kumo.dev/backup-object'],
  DatabaseUser: ['kumo.dev/database-user'],
};

/** A validated create or replace request. */
export interface ResourceInput {
  metadata: {
    name: string;
    project?: string;
    labels?: Record<string, string>;
    finalizers?: string[];
    resourceVersion?: string;
  };
  spec: Record<string, unknown>;
}

type Spec = Record<string, unknown>;

/** What some kinds add to the generic machinery, by kind name. */
export interface KindBehaviour {
  /** Checks of a spec beyond its schema (e.g. a Database against the engine catalog). */
  specChecks?: Readonly<Record<string, (spec: Spec) => FieldError[]>>;
  /** Other resources a spec names, which must exist when it is created (e.g. a Database's target). */
  references?: Readonly<
    Record<string, (spec: Spec, project: string) => Array<{ field: string; key: ResourceKey }>>
  >;
  /** What the platform decides at creation and records in the spec (a Database's target: placement). */
  place?: Readonly<Record<string, (spec: Spec) => Promise<Spec>>>;
  /** Refuses a deletion that would strand other resources (a Target with databases on it), by kind. */
  beforeDelete?: Readonly<Record<string, (key: ResourceKey) => Promise<void>>>;
  /** What goes with a resource once its deletion started (a Target's agent tokens), by kind. */
  afterDelete?: Readonly<Record<string, (key: ResourceKey) => Promise<void>>>;
  /** Limits checked inside the write's transaction (quotas), by kind. */
  admission?: Readonly<Record<string, (project: string) => Admission>>;
  /** How a spec change would take effect, for dry runs. */
  describeChange?: Readonly<Record<string, (before: Spec, after: Spec) => ChangeDescription>>;
}

/** The answer to ?dryRun=true: nothing was written. */
export interface DryRunResult {
  kind: 'DryRun';
  resource: Resource;
  /** reload / restart / none; "unknown" for kinds that do not describe their changes. */
  effect: string;
  changes: ChangeDescription['changes'];
}

/**
 * The generic resource API, the same for every kind: validation against the kind's schemas,
 * admission (parents exist and are not deleting; immutable fields), then the store. Throws domain
 * errors only.
 */
export class ResourceService {
  constructor(
    private readonly store: ResourceStore,
    private readonly events: EventStore,
    private readonly options: KindBehaviour = {},
  ) {}

  private checkSpec(def: KindDefinition, spec: Record<string, unknown>): void {
    const errors = this.options.specChecks?.[def.kind]?.(spec) ?? [];
    if (errors.length > 0) {
      throw new ValidationError(
        `The ${def.kind} spec is invalid: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}.`,
        errors,
      );
    }
  }

  /** The new spec, with the fields the platform recorded (the kind's `recorded`) kept where it leaves them out. */
  private keep(def: KindDefinition, current: Spec, next: Spec): Spec {
    const kept = def.recorded ?? [];
    const missing = kept.filter((field) => next[field] === undefined && current[field] !== undefined);
    return missing.length === 0
      ? next
      : { ...next, ...Object.fromEntries(missing.map((f) => [f, current[f]])) };
  }

  private admissionOf(def: KindDefinition, project: string): { admission?: Admission } {
    const admission = this.options.admission?.[def.kind]?.(project);
    return admission ? { admission } : {};
  }

  async get(def: KindDefinition, key: ResourceKey): Promise<Resource> {
    const resource = await this.store.get(key);
    if (!resource) throw new NotFoundError(`${def.kind} "${describe(key)}" does not exist.`);
    return resource;
  }

  list(
    def: KindDefinition,
    project: string,
    options: { selector?: LabelRequirement[]; limit: number; continue?: string; only?: ListScope },
  ): Promise<ListResult> {
    return this.store.list(def.kind, { ...options, project });
  }

  async create(
    def: KindDefinition,
    project: string,
    input: ResourceInput,
    ctx: WriteContext,
    idempotency?: Idempotency,
  ): Promise<Resource> {
    checkProject(input, project);
    this.checkSpec(def, input.spec);
    const place = this.options.place?.[def.kind];
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.createPlaced(
          def,
          project,
          place ? { ...input, spec: await place(input.spec) } : input,
          ctx,
          idempotency,
        );
      } catch (err) {
        // The target placement chose filled up before this create committed: place it again.
        if (!(err instanceof PlacementRaceError) || attempt >= PLACEMENT_ATTEMPTS) throw err;
      }
    }
  }

  private async createPlaced(
    def: KindDefinition,
    project: string,
    input: ResourceInput,
    ctx: WriteContext,
    idempotency?: Idempotency,
  ): Promise<Resource> {
    for (const ref of this.options.references?.[def.kind]?.(input.spec, project) ?? []) {
      if (!(await this.store.get(ref.key))) {
        throw new ValidationError(`${ref.field}: ${ref.key.kind} "${ref.key.name}" does not exist.`, [
          {
            field: ref.field,
            message: `no ${ref.key.kind} named "${ref.key.name}"${ref.key.project ? ` in project ${ref.key.project}` : ''}`,
          },
        ]);
      }
    }
    const parent = parentOf(def, project, input.spec);
    const finalizers = unique([
      ...(PLATFORM_FINALIZERS[def.kind] ?? []),
      ...(input.metadata.finalizers ?? []),
    ]);
    return this.store
      .create(
        def.kind,
        project,
        {
          name: input.metadata.name,
          labels: input.metadata.labels ?? {},
          finalizers,
          spec: input.spec,
          status: { phase: 'Pending' },
        },
        ctx,
        {
          ...(parent ? { parent } : {}),
          ...(idempotency ? { idempotency } : {}),
          ...this.admissionOf(def, project),
        },
      )
      .catch((err: unknown) => {
        throw def.kind === 'Project' && err instanceof AlreadyExistsError ? projectNameTaken(input) : err;
      });
  }

  /** PUT: replaces labels, finalizers (when given) and spec. metadata.resourceVersion acts like If-Match. */
  replace(
    def: KindDefinition,
    key: ResourceKey,
    input: ResourceInput,
    ctx: WriteContext,
    ifMatch?: string,
    dryRun = false,
  ): Promise<Resource | DryRunResult> {
    checkProject(input, key.project);
    if (input.metadata.name !== key.name) {
      throw new ValidationError(
        `metadata.name must be "${key.name}" (the name in the URL); resources cannot be renamed.`,
        [{ field: 'metadata.name', message: `must equal "${key.name}"` }],
      );
    }
    const precondition = ifMatch ?? input.metadata.resourceVersion;
    const mutation = (current: Resource): Mutation => {
      const spec = this.keep(def, current.spec, input.spec);
      checkImmutable(def, current.spec, spec);
      this.checkSpec(def, spec);
      return {
        labels: input.metadata.labels ?? {},
        finalizers: input.metadata.finalizers ?? current.metadata.finalizers,
        spec,
      };
    };
    if (dryRun) return this.preview(def, key, mutation, precondition);
    return this.store.update(key, mutation, ctx, {
      ...(precondition === undefined ? {} : { ifMatch: precondition }),
      ...this.admissionOf(def, key.project),
    });
  }

  /** PATCH with a JSON merge patch over {metadata: {labels, finalizers}, spec}; the result is validated whole. */
  patch(
    def: KindDefinition,
    key: ResourceKey,
    patch: unknown,
    ctx: WriteContext,
    ifMatch?: string,
    dryRun = false,
  ): Promise<Resource | DryRunResult> {
    if (!isPlainObject(patch))
      throw new ValidationError('A merge patch must be a JSON object.', [
        { field: '', message: 'must be an object' },
      ]);
    if ('status' in patch) {
      throw new ValidationError(
        'status cannot be patched here; it is written only through the /status route.',
        [{ field: 'status', message: 'remove it; use the /status route' }],
      );
    }
    const mutation = (current: Resource): Mutation => {
      const writable = {
        metadata: {
          name: current.metadata.name,
          labels: current.metadata.labels,
          finalizers: current.metadata.finalizers,
        },
        spec: current.spec,
      };
      const merged = applyMergePatch(writable, patch);
      const input = parseOrThrow(
        resourceInputSchema(def),
        merged,
        `${def.kind} after applying the patch`,
      ) as ResourceInput;
      if (input.metadata.name !== key.name) {
        throw new ValidationError('metadata.name cannot be changed.', [
          { field: 'metadata.name', message: 'cannot be changed' },
        ]);
      }
      const spec = this.keep(def, current.spec, input.spec);
      checkImmutable(def, current.spec, spec);
      this.checkSpec(def, spec);
      return {
        labels: input.metadata.labels ?? {},
        finalizers: input.metadata.finalizers ?? [],
        spec,
      };
    };
    if (dryRun) return this.preview(def, key, mutation, ifMatch);
    return this.store.update(key, mutation, ctx, {
      ...(ifMatch === undefined ? {} : { ifMatch }),
      ...this.admissionOf(def, key.project),
    });
  }

  /**
   * What a change would do, without doing it: the resource as it would be, and how the change
   * would take effect (for a Database: reload, restart or nothing). Validates like the real write.
   */
  private async preview(
    def: KindDefinition,
    key: ResourceKey,
    mutation: (current: Resource) => Mutation,
    ifMatch: string | undefined,
  ): Promise<DryRunResult> {
    const current = await this.get(def, key);
    if (ifMatch !== undefined && ifMatch !== current.metadata.resourceVersion) {
      throw new PreconditionFailedError(
        `${def.kind} "${describe(key)}" was changed by someone else (resourceVersion is ${current.metadata.resourceVersion}, you sent ${ifMatch}). Read it again and retry.`,
      );
    }
    const change = mutation(current);
    const spec = change.spec ?? current.spec;
    const specChanged = !isDeepStrictEqual(spec, current.spec);
    const resource: Resource = {
      ...current,
      metadata: {
        ...current.metadata,
        labels: change.labels ?? current.metadata.labels,
        finalizers: change.finalizers ?? current.metadata.finalizers,
        generation: current.metadata.generation + (specChanged ? 1 : 0),
      },
      spec,
    };
    const described = this.options.describeChange?.[def.kind]?.(current.spec, spec);
    return {
      kind: 'DryRun',
      resource,
      effect: described?.effect ?? (specChanged ? 'unknown' : 'none'),
      changes: described?.changes ?? [],
    };
  }

  /** Writes status (replace, or merge patch when merge is true), validated against the kind's status schema. */
  writeStatus(
    def: KindDefinition,
    key: ResourceKey,
    body: unknown,
    merge: boolean,
    ctx: WriteContext,
    ifMatch?: string,
  ): Promise<Resource> {
    return this.store.update(
      key,
      (current) => {
        const next = merge ? applyMergePatch(current.status, body) : body;
        return {
          status: parseOrThrow(def.status, next, `${def.kind} status`, ['status']) as Record<string, unknown>,
        };
      },
      ctx,
      { action: 'update-status', ...(ifMatch === undefined ? {} : { ifMatch }) },
    );
  }

  async delete(key: ResourceKey, ctx: WriteContext, ifMatch?: string): Promise<DeleteResult> {
    await this.options.beforeDelete?.[key.kind]?.(key);
    const result = await this.store.delete(key, ctx, ifMatch === undefined ? {} : { ifMatch });
    await this.options.afterDelete?.[key.kind]?.(key);
    return result;
  }

  findIdempotent(principal: string, key: string) {
    return this.store.findIdempotent(principal, key);
  }

  async listEvents(def: KindDefinition, key: ResourceKey): Promise<KumoEvent[]> {
    const resource = await this.get(def, key);
    return this.events.list(key, resource.metadata.uid);
  }
}

function parentOf(
  def: KindDefinition,
  project: string,
  spec: Record<string, unknown>,
): ResourceKey | undefined {
  if (def.scope === 'project') return { kind: 'Project', project: '', name: project };
  if (def.kind === 'Project') return { kind: 'Org', project: '', name: String(spec.org) };
  return undefined;
}

/**
 * Project names are one namespace shared by every org (like bucket names): a taken name is refused
 * with the same answer whoever holds it, the caller's org or another, so it says nothing more than
 * that the name is not available.
 */
function projectNameTaken(input: ResourceInput): AlreadyExistsError {
  return new AlreadyExistsError(
    `The project name "${input.metadata.name}" is not available: project names are shared by all organisations on this Kumo. Choose another name.`,
  );
}

function checkProject(input: ResourceInput, project: string): void {
  if (input.metadata.project !== undefined && input.metadata.project !== project) {
    throw new ValidationError(`metadata.project must be "${project}" (the project in the URL) or left out.`, [
      { field: 'metadata.project', message: `must equal "${project}"` },
    ]);
  }
}

function checkImmutable(
  def: KindDefinition,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): void {
  for (const field of def.immutable ?? []) {
    if (!isDeepStrictEqual(before[field], after[field])) {
      throw new ValidationError(
        `spec.${field} cannot change after creation (it is ${JSON.stringify(before[field])}). Create a new ${def.kind} instead.`,
        [{ field: `spec.${field}`, message: 'is immutable' }],
      );
    }
  }
}

function describe(key: ResourceKey): string {
  return key.project ? `${key.project}/${key.name}` : key.name;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
