import type { Resource } from '@kumo/api';
import type { TerminalError } from '../controllers/runtime/reconciler.js';
import type { StatusWriter } from '../controllers/runtime/status-writer.js';
import type { Credentials, CredentialStore } from '../secrets/credential-store.js';
import type { ResourceKey } from '../store/resource-rows.js';
import type { CreateInput, ResourceStore, WriteGuard } from '../store/resource-store.js';
import { LeaseLostError } from '../errors.js';
import type { GatewayAddress, Lease, LeaseStore } from '../store/target-leases.js';
import type { IngestResult, UsageLedger } from '../metering/usage-ledger.js';
import type { UsageSample } from '../metering/usage-recorder.js';

/**
 * Everything an agent reads and writes, and nothing more: desired state in, status and events
 * out, and its target's lease. In single-node mode it is served from the store; a remote agent
 * uses the HTTP API (agent/http-agent-client.ts) with the same contract, so reconcilers do not
 * change. Once a lease is held, every write carries its fence and is refused when the fence is no
 * longer current (LeaseLostError): an agent that lost its target can never write over its successor.
 */
export interface AgentClient {
  /** Takes the target's lease (LeaseHeldError while another agent holds it); its fence guards every later write. */
  acquireLease(holder: string, ttlMs: number, gateway?: GatewayAddress): Promise<Lease>;
  /** Extends the lease; LeaseLostError when it is no longer this agent's. */
  renewLease(ttlMs: number): Promise<Lease>;
  /** Gives the lease up on a clean stop. */
  releaseLease(): Promise<void>;
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
  /** Reports usage samples of the target's resources; one the ledger already has is counted once. */
  reportUsage(samples: UsageSample[]): Promise<IngestResult>;
}

/** The agent contract served straight from the store: the agent of `kumo up`, in the control plane's process. */
export class StoreAgentClient implements AgentClient {
  private lease: Lease | undefined;
  private readonly actor: string;

  constructor(
    private readonly store: ResourceStore,
    private readonly status: StatusWriter,
    private readonly secrets: CredentialStore,
    private readonly leases: LeaseStore,
    private readonly target: string,
    private readonly ledger: UsageLedger,
  ) {
    this.actor = `system:agent:${target}`;
  }

  async acquireLease(holder: string, ttlMs: number, gateway?: GatewayAddress): Promise<Lease> {
    this.lease = await this.leases.acquire(this.target, holder, ttlMs, gateway);
    return this.lease;
  }

  async renewLease(ttlMs: number): Promise<Lease> {
    const held = this.held();
    this.lease = await this.leases.renew(this.target, held.holder, held.fence, ttlMs);
    return this.lease;
  }

  async releaseLease(): Promise<void> {
    const held = this.lease;
    this.lease = undefined;
    if (held) await this.leases.release(this.target, held.holder, held.fence);
  }

  private held(): Lease {
    if (!this.lease) throw new LeaseLostError(`This agent holds no lease of target ${this.target}.`);
    return this.lease;
  }

  /** The write guard of the lease held: the fence must still be the target's current one. */
  private guard(): WriteGuard {
    const { fence } = this.held();
    return (client) => this.leases.check(client, this.target, fence);
  }

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
    return this.status.update(key, compute, observedGeneration, { guard: this.guard() });
  }

  async event(resource: Resource, type: 'Normal' | 'Warning', reason: string, message: string) {
    await this.leases.check(this.leases.queryable, this.target, this.held().fence);
    return this.status.event(resource, type, reason, message);
  }

  reportTerminalError(key: ResourceKey, err: TerminalError): Promise<void> {
    return this.status.terminalError(key, err, this.guard());
  }

  async reportUsage(samples: UsageSample[]): Promise<IngestResult> {
    await this.leases.check(this.leases.queryable, this.target, this.held().fence);
    return this.ledger.ingest(this.target, samples);
  }

  create(kind: string, project: string, input: Omit<CreateInput, 'status'>): Promise<Resource> {
    return this.store.create(
      kind,
      project,
      { ...input, status: { phase: 'Pending' } },
      { actor: this.actor },
      { admission: this.guard() },
    );
  }

  async removeFinalizer(key: ResourceKey, finalizer: string): Promise<void> {
    await this.store
      .update(
        key,
        (current) => ({ finalizers: current.metadata.finalizers.filter((f) => f !== finalizer) }),
        { actor: this.actor },
        { action: 'remove-finalizer', guard: this.guard() },
      )
      .catch((err: { code?: string }) => {
        if (err.code !== 'not-found') throw err;
      });
  }
}
