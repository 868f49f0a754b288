import { PROBLEM_TYPES, type Problem, type Resource } from '@kumo/api';
import type { TerminalError } from '../controllers/runtime/reconciler.js';
import { KumoError, LeaseHeldError, LeaseLostError, PreconditionFailedError } from '../errors.js';
import type { Credentials } from '../secrets/credential-store.js';
import type { ResourceKey } from '../store/resource-rows.js';
import type { CreateInput } from '../store/resource-store.js';
import type { GatewayAddress, Lease } from '../store/target-leases.js';
import type { IngestResult } from '../metering/usage-ledger.js';
import type { UsageSample } from '../metering/usage-recorder.js';
import type { AgentClient } from './agent-client.js';

export interface HttpAgentClientOptions {
  /** The control plane's API: one URL, or several replicas tried in turn when one does not answer. */
  apiUrls: string[];
  /** The agent token of this target (`kumo target create` prints it). */
  token: string;
  target: string;
  /** Per request. Default: 15 s. */
  timeoutMs?: number;
}

/** A request the control plane answered with a problem (not a transport failure). */
export class ApiProblemError extends KumoError {
  readonly code = 'api-problem';
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}

const STATUS_WRITE_ATTEMPTS = 5;

/**
 * The agent contract over the public HTTP API (http/agent-routes.ts), for an agent on another host
 * than the control plane. Any replica serves any request: a replica that does not answer (or
 * answers 503) is skipped for the next one. Writes carry the fence of the lease held.
 */
export class HttpAgentClient implements AgentClient {
  private lease: Lease | undefined;
  private preferred = 0;
  private readonly base: string;

  constructor(private readonly options: HttpAgentClientOptions) {
    if (options.apiUrls.length === 0) throw new Error('HttpAgentClient needs at least one API URL');
    this.base = `/v1/agent/targets/${encodeURIComponent(options.target)}`;
  }

  async acquireLease(holder: string, ttlMs: number, gateway?: GatewayAddress): Promise<Lease> {
    this.lease = toLease(
      await this.call('PUT', '/lease', { holder, ttlMs, ...(gateway ? { gateway } : {}) }),
    );
    return this.lease;
  }

  async renewLease(ttlMs: number): Promise<Lease> {
    const held = this.held();
    this.lease = toLease(
      await this.call('POST', '/lease/renew', { holder: held.holder, fence: held.fence, ttlMs }),
    );
    return this.lease;
  }

  async releaseLease(): Promise<void> {
    const held = this.lease;
    this.lease = undefined;
    if (held) await this.call('POST', '/lease/release', { holder: held.holder, fence: held.fence });
  }

  async get(key: ResourceKey): Promise<Resource | undefined> {
    const query = new URLSearchParams({ kind: key.kind, project: key.project, name: key.name });
    return this.call<Resource>('GET', `/resource?${query}`).catch(notFoundAsUndefined);
  }

  async listKeys(kind: string): Promise<ResourceKey[]> {
    return (await this.call<{ items: ResourceKey[] }>('GET', `/keys?kind=${encodeURIComponent(kind)}`)).items;
  }

  credentials(database: Resource): Promise<Credentials> {
    return this.call('POST', '/credentials', {
      kind: database.kind,
      project: database.metadata.project,
      name: database.metadata.name,
    });
  }

  /** Reads, computes, and writes conditionally on the version read; tries again when it changed in between. */
  async updateStatus(
    key: ResourceKey,
    compute: (current: Resource) => Record<string, unknown>,
    observedGeneration?: number,
  ): Promise<Resource | undefined> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.get(key);
      if (!current) return undefined;
      try {
        return await this.call<Resource>('PUT', '/status', {
          key,
          resourceVersion: current.metadata.resourceVersion,
          status: compute(current),
          ...(observedGeneration === undefined ? {} : { observedGeneration }),
        }).catch(notFoundAsUndefined);
      } catch (err) {
        if (!(err instanceof PreconditionFailedError) || attempt >= STATUS_WRITE_ATTEMPTS) throw err;
      }
    }
  }

  async event(
    resource: Resource,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    await this.call('POST', '/events', { key: keyOf(resource), type, reason, message }).catch(
      notFoundAsUndefined,
    );
  }

  reportUsage(samples: UsageSample[]): Promise<IngestResult> {
    return this.call<IngestResult>('POST', '/usage', { samples });
  }

  async create(kind: string, project: string, input: Omit<CreateInput, 'status'>): Promise<Resource> {
    if (kind !== 'Backup') throw new Error(`An agent creates only Backups, not ${kind}.`);
    return this.call('POST', '/backups', { project, ...input });
  }

  async removeFinalizer(key: ResourceKey, finalizer: string): Promise<void> {
    await this.call('POST', '/finalizers/remove', { key, finalizer });
  }

  async reportTerminalError(key: ResourceKey, err: TerminalError): Promise<void> {
    await this.call('POST', '/terminal-error', { key, reason: err.reason, message: err.message }).catch(
      notFoundAsUndefined,
    );
  }

  private held(): Lease {
    if (!this.lease) throw new LeaseLostError(`This agent holds no lease of target ${this.options.target}.`);
    return this.lease;
  }

  /**
   * One request, to the replica that answered last, then to each other one in turn while they do
   * not answer or answer 503. A problem answer becomes the matching Kumo error.
   */
  private async call<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const urls = this.options.apiUrls;
    let lastFailure: unknown;
    for (let i = 0; i < urls.length; i++) {
      const index = (this.preferred + i) % urls.length;
      let response: Response;
      try {
        response = await fetch(`${urls[index]}${this.base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${this.options.token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(this.lease ? { 'x-kumo-fence': String(this.lease.fence) } : {}),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(timeoutMs ?? this.options.timeoutMs ?? 15_000),
        });
      } catch (err) {
        lastFailure = new Error(
          `the control plane at ${urls[index]} did not answer: ${(err as Error).message}`,
        );
        continue;
      }
      if (response.status === 503) {
        lastFailure = await problemError(response);
        continue;
      }
      this.preferred = index;
      if (!response.ok) throw await problemError(response);
      return (await response.json()) as T;
    }
    throw lastFailure;
  }
}

async function problemError(response: Response): Promise<Error> {
  const problem = (await response.json().catch(() => undefined)) as Problem | undefined;
  const detail = problem?.detail ?? `HTTP ${response.status}`;
  if (problem?.type === PROBLEM_TYPES.leaseHeld)
    return new LeaseHeldError(detail, 'another agent', new Date());
  if (problem?.type === PROBLEM_TYPES.leaseLost) return new LeaseLostError(detail);
  if (response.status === 412) return new PreconditionFailedError(detail);
  return new ApiProblemError(
    problem ?? { type: PROBLEM_TYPES.internal, title: 'Error', status: response.status, detail },
  );
}

function notFoundAsUndefined(err: unknown): undefined {
  if (err instanceof ApiProblemError && err.problem.status === 404) return undefined;
  throw err;
}

function keyOf(resource: Resource): ResourceKey {
  return { kind: resource.kind, project: resource.metadata.project ?? '', name: resource.metadata.name };
}

function toLease(raw: unknown): Lease {
  const l = raw as { target: string; holder: string; fence: number; expiresAt: string };
  return { target: l.target, holder: l.holder, fence: l.fence, expiresAt: new Date(l.expiresAt) };
}
