import { z } from 'zod';

/** The lifecycle phases a user sees. */
export const PHASES = [
  'Pending', // accepted, nothing has acted on it yet
  'Provisioning', // being created for the first time
  'Ready', // running as specified
  'Updating', // a spec change is being applied
  'Degraded', // running, but not fully healthy (e.g. restarting after a crash)
  'Stopped', // stopped on request
  'Error', // failed; the Ready condition says why
  'Deleting', // deletionTimestamp is set; waiting for finalizers
  'Running', // a job (a backup) is under way
  'Succeeded', // a job finished and its result was checked
  'Failed', // a job failed; its conditions and events say why
  'Unknown', // not observable now: the agent of its target is unreachable (it may well still run)
] as const;
export const phaseSchema = z.enum(PHASES).meta({ id: 'Phase' });
export type Phase = z.infer<typeof phaseSchema>;

export const conditionSchema = z
  .strictObject({
    type: z.string().min(1).max(64),
    status: z.enum(['True', 'False', 'Unknown']),
    reason: z.string().min(1).max(64),
    message: z.string().max(4096),
    lastTransitionTime: z.string().meta({ description: 'Changes only when status changes.' }),
    observedGeneration: z.number().int().optional(),
  })
  .meta({ id: 'Condition' });
export type Condition = z.infer<typeof conditionSchema>;
export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** Fields every status has; kinds extend it. */
export const baseStatusShape = {
  phase: phaseSchema.optional(),
  observedGeneration: z.number().int().optional(),
  conditions: z.array(conditionSchema).optional(),
};

/**
 * Upserts a condition by type and returns a new list. lastTransitionTime is kept unless the
 * condition's status flips (or the condition is new), so repeated reconciles do not churn it.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  now: Date = new Date(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === input.type);
  const previous = index >= 0 ? list[index] : undefined;
  const lastTransitionTime =
    previous && previous.status === input.status ? previous.lastTransitionTime : now.toISOString();
  const next: Condition = { ...input, lastTransitionTime };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

/** The list without the condition of type (the same list when there is none). */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}
