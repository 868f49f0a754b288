import { type Resource, kindByName, setCondition, type Condition } from '@kumo/api';
import type { EventStore } from '../../store/event-store.js';
import type { ResourceKey } from '../../store/resource-rows.js';
import type { ResourceStore, WriteGuard } from '../../store/resource-store.js';
import { parseOrThrow } from '../../resources/validation.js';
import type { TerminalError } from './reconciler.js';

const CONTROLLER_ACTOR = { actor: 'system:controllers' };

/**
 * How controllers write status. The one place that sets status.observedGeneration: to the
 * generation of the spec the status was computed from (read under the same row lock).
 */
export class StatusWriter {
  constructor(
    private readonly store: ResourceStore,
    private readonly events: EventStore,
  ) {}

  /**
   * Replaces status with compute(current) plus observedGeneration: the generation the caller
   * acted on (`observedGeneration`), or the current one when the caller computes from `current`
   * itself. Never the current one for work done on an older spec: a PATCH that lands while a
   * reconcile runs must not be reported as done. Returns the resource, or undefined when it no
   * longer exists. Writes nothing when the status is unchanged. `guard` may refuse the write
   * inside its transaction (an agent's fence); `ifMatch` makes it conditional on the version the
   * caller computed from (an agent over HTTP).
   */
  async update(
    key: ResourceKey,
    compute: (current: Resource) => Record<string, unknown>,
    observedGeneration?: number,
    options: { guard?: WriteGuard; ifMatch?: string } = {},
  ): Promise<Resource | undefined> {
    const def = kindByName(key.kind);
    try {
      return await this.store.update(
        key,
        (current) => {
          const status: Record<string, unknown> = {
            ...compute(current),
            observedGeneration: observedGeneration ?? current.metadata.generation,
          };
          if (current.metadata.deletionTimestamp) status.phase = 'Deleting';
          return {
            status: def
              ? (parseOrThrow(def.status, status, `${def.kind} status`, ['status']) as Record<
                  string,
                  unknown
                >)
              : status,
          };
        },
        CONTROLLER_ACTOR,
        { action: 'update-status', ...options },
      );
    } catch (err) {
      if ((err as { code?: string }).code === 'not-found') return undefined;
      throw err;
    }
  }

  /** Shows err as Ready=False with its reason, phase Error, and a Warning event. */
  async terminalError(key: ResourceKey, err: TerminalError, guard?: WriteGuard): Promise<void> {
    const resource = await this.update(
      key,
      (current) => ({
        ...current.status,
        phase: 'Error',
        conditions: setCondition(current.status.conditions as Condition[] | undefined, {
          type: 'Ready',
          status: 'False',
          reason: err.reason,
          message: err.message,
          observedGeneration: current.metadata.generation,
        }),
      }),
      undefined,
      guard ? { guard } : {},
    );
    if (resource) await this.events.record(resource, 'Warning', err.reason, err.message);
  }

  /** Records an event (merged with identical earlier ones). */
  event(resource: Resource, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    return this.events.record(resource, type, reason, message);
  }
}
