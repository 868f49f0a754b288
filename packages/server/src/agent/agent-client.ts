import type { Resource } from '@kumo/api';
import type { TerminalError } from '../controllers/runtime/reconciler.js';
import type { StatusWriter } from '../controllers/runtime/status-writer.js';
import type { Credentials, CredentialStore } from '../secrets/credential-store.js';
import type { ResourceKey } from '../store/resource-rows.js';
import type { CreateInput, ResourceStore } from '../store/resource-store.js';

/**
 * Everything an agent reads and writes, and nothing more: desired state in, status and events
 * out. In single-node mode it is served from the store; a remote agent serves it over the HTTP API
 * with the same contract, so reconcilers do not change.
 */
export interface AgentClient {
  get(key: ResourceKey): Promise<Resource | undefined>;
  listKeys(kind: string): Promise<ResourceKey[]>;
  credentials(database: Resource): Promise<Credentials>;
  /** Status through the status route's rules; observedGeneration is the generation the caller acted on. */
  updateStatus(
    key: ResourceKey,
    compute: (current: Resource) => Record<string, unknown>,
    observedGeneration?: number,
  ): Promise<Resource | undefined>;
  event(resource: Resource, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
  /** Creates a resource (a safety backup before an in-place restore). */
  create(kind: string, project: string, input: Omit<CreateInput, 'status'>): Promise<Resource>;
  /** Removes one finalizer (the resource disappears once none are left and it is deleting). */
  removeFinalizer(key: ResourceKey, finalizer: string): Promise<void>;
  /** Shows an error retrying will not fix: phase Error, Ready=False with its reason, a Warning event. */
  reportTerminalError(key: ResourceKey, err: TerminalError): Promise<void>;
}

export class StoreAgentClient implements AgentClient {
  constructor(
    private readonly store: ResourceStore,
    private readonly status: StatusWriter,
    private readonly secrets: CredentialStore,
    private readonly actor: string,
  ) {}

  get(key: ResourceKey) {
    return this.store.get(key);
  }

  listKeys(kind: string) {
    return this.store.keys(kind);
  }

  credentials(database: Resource) {
    return this.secrets.ensure(database.metadata.uid, database.metadata.name);
  }

  updateStatus(
    key: ResourceKey,
    compute: (current: Resource) => Record<string, unknown>,
    observedGeneration?: number,
  ) {
    return this.status.update(key, compute, observedGeneration);
  }

  event(resource: Resource, type: 'Normal' | 'Warning', reason: string, message: string) {
    return this.status.event(resource, type, reason, message);
  }

  reportTerminalError(key: ResourceKey, err: TerminalError): Promise<void> {
    return this.status.terminalError(key, err);
  }

  create(kind: string, project: string, input: Omit<CreateInput, 'status'>): Promise<Resource> {
    return this.store.create(
      kind,
      project,
      { ...input, status: { phase: 'Pending' } },
      { actor: this.actor },
    );
  }

  async removeFinalizer(key: ResourceKey, finalizer: string): Promise<void> {
    await this.store
      .update(
        key,
        (current) => ({ finalizers: current.metadata.finalizers.filter((f) => f !== finalizer) }),
        { actor: this.actor },
        {
          action: 'remove-finalizer',
        },
      )
      .catch((err: { code?: string }) => {
        if (err.code !== 'not-found') throw err;
      });
  }
}
