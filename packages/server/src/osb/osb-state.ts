import { type Condition, type Resource, findCondition } from '@kumo/api';

/** The `state` of an OSB last_operation answer. */
export type OperationState = 'in progress' | 'succeeded' | 'failed';

export interface LastOperation {
  state: OperationState;
  description: string;
}

/**
 * What the last operation on a resource (a Database for an instance, a DatabaseUser for a binding)
 * came to, read from its status alone, so it is as honest as the status: succeeded when Ready is
 * True for the current generation, failed in phase Error for the current generation (with the
 * Ready condition's message),
 * in progress otherwise (also while it is being deleted). A resource that is gone has no state:
 * the caller answers 410 Gone.
 */
export function lastOperationOf(resource: Resource): LastOperation {
  const ready = findCondition(resource.status.conditions as Condition[] | undefined, 'Ready');
  const phase = String(resource.status.phase ?? 'Pending');
  if (resource.metadata.deletionTimestamp) return { state: 'in progress', description: 'deleting' };
  const current = resource.status.observedGeneration === resource.metadata.generation;
  if (ready?.status === 'True' && current) return { state: 'succeeded', description: 'ready' };
  // An Error from before the latest change is not that change's outcome: it is still on its way.
  if (phase === 'Error' && current)
    return { state: 'failed', description: ready?.message || ready?.reason || 'failed' };
  const detail = ready?.message || ready?.reason;
  return { state: 'in progress', description: detail ? `${phase}: ${detail}` : phase };
}
