import { type Condition, type Resource, findCondition, setCondition } from '@kumo/api';
import type { ResourceKey } from '../store/resource-rows.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { ReconcileResult, Reconciler } from './runtime/reconciler.js';
import type { StatusWriter } from './runtime/status-writer.js';

const ACTOR = { actor: 'system:controllers' };
const WAIT_FOR_CHILDREN_MS = 1000;

export interface CascadeOptions {
  kind: 'Org' | 'Project';
  finalizer: string;
  /** The resources that belong to the parent and are deleted with it. */
  children: (store: ResourceStore, parent: ResourceKey) => Promise<ResourceKey[]>;
  childrenNoun: string;
  /** Forgets what lives outside the resources table (memberships, quotas) once the children are gone. */
  cleanUp?: (parent: Resource) => Promise<void>;
}

/**
 * For containers (orgs own projects; projects own databases and the rest): while alive they are
 * Ready; once deleted they delete their children, wait until every child is gone (each child's own
 * finalizers may take time), and only then release their finalizer. Idempotent at every step.
 */
export class CascadeReconciler implements Reconciler {
  readonly name: string;
  readonly kind: string;

  constructor(
    private readonly store: ResourceStore,
    private readonly status: StatusWriter,
    private readonly options: CascadeOptions,
  ) {
    this.kind = options.kind;
    this.name = `${options.kind.toLowerCase()}-cascade`;
  }

  async reconcile(key: ResourceKey): Promise<ReconcileResult | void> {
    const resource = await this.store.get(key);
    if (!resource) return;
    if (!resource.metadata.deletionTimestamp) {
      await this.status.update(key, (current) => ({
        ...current.status,
        phase: 'Ready',
        conditions: setCondition(current.status.conditions as Condition[] | undefined, {
          type: 'Ready',
          status: 'True',
          reason: 'Active',
          message: '',
          observedGeneration: current.metadata.generation,
        }),
      }));
      return;
    }
    if (!resource.metadata.finalizers.includes(this.options.finalizer)) return;
    const children = await this.options.children(this.store, key);
    const started =
      findCondition(resource.status.conditions as Condition[] | undefined, 'Ready')?.reason === 'Deleting';
    if (children.length > 0 && !started) {
      await this.status.event(
        resource,
        'Normal',
        'DeletingChildren',
        `deleting ${children.length} ${this.options.childrenNoun}`,
      );
    }
    for (const child of children) await this.store.delete(child, ACTOR).catch(ignoreNotFound);
    if (children.length > 0) {
      const message = `waiting for ${children.length} ${this.options.childrenNoun} to be deleted`;
      await this.status.update(key, (current) => ({
        ...current.status,
        conditions: setCondition(current.status.conditions as Condition[] | undefined, {
          type: 'Ready',
          status: 'False',
          reason: 'Deleting',
          message,
          observedGeneration: current.metadata.generation,
        }),
      }));
      return { requeueAfterMs: WAIT_FOR_CHILDREN_MS };
    }
    await this.options.cleanUp?.(resource);
    await this.store
      .update(
        key,
        (current) => ({
          finalizers: current.metadata.finalizers.filter((f) => f !== this.options.finalizer),
        }),
        ACTOR,
        {
          action: 'remove-finalizer',
        },
      )
      .catch(ignoreNotFound);
  }
}

function ignoreNotFound(err: unknown): void {
  if ((err as { code?: string }).code !== 'not-found') throw err;
}

export function orgCascade(
  store: ResourceStore,
  status: StatusWriter,
  cleanUp: CascadeOptions['cleanUp'],
): CascadeReconciler {
  return new CascadeReconciler(store, status, {
    kind: 'Org',
    cleanUp,
    finalizer: 'kumo.dev/org-projects',
    childrenNoun: 'project(s)',
    children: (s, org) => s.findKeys({ kind: 'Project', specField: 'org', equals: org.name }),
  });
}

export function projectCascade(
  store: ResourceStore,
  status: StatusWriter,
  cleanUp: CascadeOptions['cleanUp'],
): CascadeReconciler {
  return new CascadeReconciler(store, status, {
    kind: 'Project',
    cleanUp,
    finalizer: 'kumo.dev/project-resources',
    childrenNoun: 'resource(s)',
    children: (s, project) => s.findKeys({ project: project.name }),
  });
}
