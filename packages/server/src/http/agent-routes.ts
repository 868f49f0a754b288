import { type Resource, kindByName, nameSchema, problemSchema } from '@kumo/api';
import { z } from 'zod';
import { TerminalError } from '../controllers/runtime/reconciler.js';
import type { StatusWriter } from '../controllers/runtime/status-writer.js';
import { LeaseLostError, NotFoundError, ValidationError } from '../errors.js';
import type { CredentialStore } from '../secrets/credential-store.js';
import type { ResourceKey } from '../store/resource-rows.js';
import type { ResourceStore, WriteGuard } from '../store/resource-store.js';
import type { LeaseStore } from '../store/target-leases.js';
import type { TargetScope } from '../store/target-scope.js';
import type { AppContext, KumoRouter } from './router.js';
import { INTERVAL_SECONDS, METER_NAMES, type MeterName } from '../metering/meters.js';
import type { UsageLedger } from '../metering/usage-ledger.js';
import type { UsageSample } from '../metering/usage-recorder.js';
import { validated } from './router.js';

export interface AgentRouteDeps {
  store: ResourceStore;
  statusWriter: StatusWriter;
  credentials: CredentialStore;
  leases: LeaseStore;
  scope: TargetScope;
  ledger: UsageLedger;
}

const base = '/v1/agent/targets/{target}';
const params = z.object({ target: nameSchema });
const problem = { content: { 'application/problem+json': { schema: problemSchema } } };
const json = <T extends z.ZodType>(schema: T) => ({
  content: { 'application/json': { schema } },
  required: true,
});
const ok = (description: string, schema: z.ZodType = z.object({})) => ({
  200: { description, content: { 'application/json': { schema } } },
  403: { description: 'Not this agent’s target', ...problem },
  409: { description: 'The lease is held by another agent, or this one lost it', ...problem },
});
const access = { agent: { targetParam: 'target' } } as const;
const tags = ['Agent'];
const keySchema = z.strictObject({
  kind: z.string().min(1).max(40),
  project: z.string().max(63),
  name: nameSchema,
});
const leaseSchema = z.object({
  target: z.string(),
  holder: z.string(),
  fence: z.number(),
  expiresAt: z.string(),
});
const holderSchema = z.string().min(1).max(200);
const usageSampleSchema = z.strictObject({
  resourceUid: z.uuid(),
  kind: z.string().min(1).max(40),
  project: z.string().max(63),
  name: nameSchema,
  meter: z.enum(METER_NAMES as [MeterName, ...MeterName[]]),
  dimensions: z.record(z.string().max(63), z.string().max(200)),
  intervalStart: z
    .number()
    .int()
    .refine((t) => t % INTERVAL_SECONDS === 0, { message: `must be a multiple of ${INTERVAL_SECONDS}` }),
  seconds: z.number().int().min(1).max(INTERVAL_SECONDS),
  quantity: z.string().regex(/^\d{1,38}$/),
  final: z.boolean(),
});
const ttlSchema = z.number().int().min(1000).max(600_000);
/** The fence a write was made under (the agent's lease), in this header. */
export const FENCE_HEADER = 'x-kumo-fence';

/** The fence a write was made under; without one, the caller holds no lease. */
function fenceOf(c: AppContext): number {
  const fence = Number(c.req.header(FENCE_HEADER));
  if (!Number.isSafeInteger(fence) || fence < 1)
    throw new LeaseLostError(
      `Send the fence of this agent's lease in ${FENCE_HEADER}; take the lease first.`,
    );
  return fence;
}

/**
 * The agent contract over HTTP (agent/http-agent-client.ts is its client): the lease, desired
 * state in, status, events and finalizers out — for the caller's own target only (an agent token
 * names one). Every write carries the fence of the caller's lease and is refused inside its
 * transaction once that fence is not the target's current one.
 */
export function registerAgentRoutes(router: KumoRouter, deps: AgentRouteDeps): void {
  const target = (c: AppContext) => validated<{ target: string }>(c, 'param').target;
  const body = <T>(c: AppContext) => validated<T>(c, 'json');
  const guard = (c: AppContext): WriteGuard => {
    const fence = Number(c.req.header(FENCE_HEADER));
    if (!Number.isSafeInteger(fence) || fence < 1)
      throw new LeaseLostError(
        `Send the fence of this agent's lease in ${FENCE_HEADER}; take the lease first.`,
      );
    return (client) => deps.leases.check(client, target(c), fence);
  };
  /** The resource, when it is on the caller's target; 404 otherwise (what is elsewhere does not exist for it). */
  const held = async (c: AppContext, key: ResourceKey, purpose: 'read' | 'write'): Promise<Resource> => {
    const resource = await deps.store.get(key);
    if (!resource || !(await deps.scope.holds(target(c), resource, purpose)))
      throw new NotFoundError(
        `${key.kind} ${key.project ? `${key.project}/` : ''}${key.name} is not on target ${target(c)}.`,
      );
    return resource;
  };
  const lease = (l: { target: string; holder: string; fence: number; expiresAt: Date }) => ({
    ...l,
    expiresAt: l.expiresAt.toISOString(),
  });

  router.add({
    method: 'put',
    path: `${base}/lease`,
    tags,
    summary: "Takes the target's lease (409 lease-held while another agent holds it)",
    access,
    request: {
      params,
      body: json(
        z.strictObject({
          holder: holderSchema,
          ttlMs: ttlSchema,
          gateway: z.strictObject({ url: z.url().max(500), secret: z.string().min(32).max(200) }).optional(),
        }),
      ),
    },
    responses: ok('The lease, with its fence', leaseSchema),
    handler: async (c) => {
      const b = body<{ holder: string; ttlMs: number; gateway?: { url: string; secret: string } }>(c);
      await held(c, { kind: 'Target', project: '', name: target(c) }, 'read');
      return c.json(lease(await deps.leases.acquire(target(c), b.holder, b.ttlMs, b.gateway)));
    },
  });
  router.add({
    method: 'post',
    path: `${base}/lease/renew`,
    tags,
    summary: 'Extends the lease (409 lease-lost when it is no longer the caller’s)',
    access,
    request: {
      params,
      body: json(z.strictObject({ holder: holderSchema, fence: z.number().int(), ttlMs: ttlSchema })),
    },
    responses: ok('The lease', leaseSchema),
    handler: async (c) => {
      const b = body<{ holder: string; fence: number; ttlMs: number }>(c);
      return c.json(lease(await deps.leases.renew(target(c), b.holder, b.fence, b.ttlMs)));
    },
  });
  router.add({
    method: 'post',
    path: `${base}/lease/release`,
    tags,
    summary: 'Gives the lease up (a clean stop)',
    access,
    request: { params, body: json(z.strictObject({ holder: holderSchema, fence: z.number().int() })) },
    responses: ok('Released'),
    handler: async (c) => {
      const b = body<{ holder: string; fence: number }>(c);
      await deps.leases.release(target(c), b.holder, b.fence);
      return c.json({});
    },
  });

  router.add({
    method: 'get',
    path: `${base}/keys`,
    tags,
    summary: 'Keys of the resources of a kind on the target (resync)',
    access,
    request: {
      params,
      query: z.strictObject({ kind: z.enum(['Database', 'Backup', 'DatabaseUser', 'Target']) }),
    },
    responses: ok('Keys', z.object({ items: z.array(keySchema) })),
    handler: async (c) => {
      const { kind } = validated<{ kind: string }>(c, 'query');
      return c.json({ items: await deps.scope.keys(target(c), kind) });
    },
  });
  router.add({
    method: 'get',
    path: `${base}/resource`,
    tags,
    summary: 'One resource on the target, as stored',
    access,
    request: { params, query: keySchema },
    responses: {
      ...ok('The resource', z.record(z.string(), z.unknown())),
      404: { description: 'Not on this target', ...problem },
    },
    handler: async (c) => c.json(await held(c, validated<ResourceKey>(c, 'query'), 'read')),
  });
  router.add({
    method: 'post',
    path: `${base}/credentials`,
    tags,
    summary: "A database's or a DatabaseUser's credentials (created on first use), to apply on its server",
    access,
    request: {
      params,
      body: json(
        z.strictObject({
          kind: z.enum(['Database', 'DatabaseUser']).default('Database'),
          project: nameSchema,
          name: nameSchema,
        }),
      ),
    },
    responses: ok(
      'Credentials',
      z.object({ username: z.string(), password: z.string(), version: z.number() }),
    ),
    handler: async (c) => {
      const b = body<{ kind: string; project: string; name: string }>(c);
      const db = await held(c, b, 'write');
      c.header('cache-control', 'no-store');
      return c.json(await deps.credentials.ensure(db.metadata.uid, db.metadata.name));
    },
  });

  router.add({
    method: 'put',
    path: `${base}/status`,
    tags,
    summary: 'Writes the status of a resource on the target, computed from the version it names',
    access,
    request: {
      params,
      body: json(
        z.strictObject({
          key: keySchema,
          resourceVersion: z.string().min(1).max(40),
          status: z.record(z.string(), z.unknown()),
          observedGeneration: z.number().int().optional(),
        }),
      ),
    },
    responses: {
      ...ok('The resource after the write', z.record(z.string(), z.unknown())),
      412: { description: 'The resource changed since that version: read it again', ...problem },
    },
    handler: async (c) => {
      const b = body<{
        key: ResourceKey;
        resourceVersion: string;
        status: Record<string, unknown>;
        observedGeneration?: number;
      }>(c);
      await held(c, b.key, 'write');
      const updated = await deps.statusWriter.update(b.key, () => b.status, b.observedGeneration, {
        guard: guard(c),
        ifMatch: b.resourceVersion,
      });
      if (!updated) throw new NotFoundError(`${b.key.kind} ${b.key.name} no longer exists.`);
      return c.json(updated);
    },
  });
  router.add({
    method: 'post',
    path: `${base}/events`,
    tags,
    summary: 'Records an event on a resource of the target',
    access,
    request: {
      params,
      body: json(
        z.strictObject({
          key: keySchema,
          type: z.enum(['Normal', 'Warning']),
          reason: z.string().min(1).max(100),
          message: z.string().max(4000),
        }),
      ),
    },
    responses: ok('Recorded'),
    handler: async (c) => {
      const b = body<{ key: ResourceKey; type: 'Normal' | 'Warning'; reason: string; message: string }>(c);
      const resource = await held(c, b.key, 'write');
      // Events are not part of a resource's row: the fence is checked just before, not with it.
      await deps.leases.check(deps.leases.queryable, target(c), fenceOf(c));
      await deps.statusWriter.event(resource, b.type, b.reason, b.message);
      return c.json({});
    },
  });
  router.add({
    method: 'post',
    path: `${base}/usage`,
    tags,
    summary: "Reports usage samples of the target's resources (counted once, however often sent)",
    access,
    request: { params, body: json(z.strictObject({ samples: z.array(usageSampleSchema).max(1000) })) },
    responses: ok(
      'Recorded: how many were new, already known, or refused',
      z.object({
        accepted: z.number(),
        duplicates: z.number(),
        rejected: z.array(z.object({ resourceUid: z.string(), reason: z.string() })),
      }),
    ),
    handler: async (c) => {
      const { samples } = body<{ samples: UsageSample[] }>(c);
      await deps.leases.check(deps.leases.queryable, target(c), fenceOf(c));
      return c.json(await deps.ledger.ingest(target(c), samples));
    },
  });
  router.add({
    method: 'post',
    path: `${base}/terminal-error`,
    tags,
    summary: 'Shows an error retrying will not fix (phase Error, Ready=False with its reason)',
    access,
    request: {
      params,
      body: json(
        z.strictObject({ key: keySchema, reason: z.string().min(1).max(100), message: z.string().max(4000) }),
      ),
    },
    responses: ok('Recorded'),
    handler: async (c) => {
      const b = body<{ key: ResourceKey; reason: string; message: string }>(c);
      await held(c, b.key, 'write');
      await deps.statusWriter.terminalError(b.key, new TerminalError(b.reason, b.message), guard(c));
      return c.json({});
    },
  });
  router.add({
    method: 'post',
    path: `${base}/finalizers/remove`,
    tags,
    summary: 'Removes one finalizer from a resource of the target (it goes once none are left)',
    access,
    request: {
      params,
      body: json(z.strictObject({ key: keySchema, finalizer: z.string().min(1).max(100) })),
    },
    responses: ok('Removed'),
    handler: async (c) => {
      const b = body<{ key: ResourceKey; finalizer: string }>(c);
      const write = guard(c);
      const resource = await deps.store.get(b.key);
      if (!resource) return c.json({});
      await held(c, b.key, 'write');
      await deps.store
        .update(
          b.key,
          (current) => ({ finalizers: current.metadata.finalizers.filter((f) => f !== b.finalizer) }),
          { actor: `system:agent:${target(c)}` },
          { action: 'remove-finalizer', guard: write },
        )
        .catch((err: { code?: string }) => {
          if (err.code !== 'not-found') throw err;
        });
      return c.json({});
    },
  });
  router.add({
    method: 'post',
    path: `${base}/backups`,
    tags,
    summary: 'Creates a Backup of a database on the target (the safety backup before an in-place restore)',
    access,
    request: {
      params,
      body: json(
        z.strictObject({
          project: nameSchema,
          name: nameSchema,
          labels: z.record(z.string(), z.string()),
          finalizers: z.array(z.string()),
          spec: z.record(z.string(), z.unknown()),
        }),
      ),
    },
    responses: ok('The Backup', z.record(z.string(), z.unknown())),
    handler: async (c) => {
      const b = body<{
        project: string;
        name: string;
        labels: Record<string, string>;
        finalizers: string[];
        spec: Record<string, unknown>;
      }>(c);
      const def = kindByName('Backup')!;
      const spec = def.spec.safeParse(b.spec);
      if (!spec.success)
        throw new ValidationError('The Backup spec is invalid.', [
          { field: 'spec', message: spec.error.message },
        ]);
      await held(
        c,
        { kind: 'Database', project: b.project, name: String((spec.data as { database: string }).database) },
        'write',
      );
      const created = await deps.store.create(
        'Backup',
        b.project,
        {
          name: b.name,
          labels: b.labels,
          finalizers: b.finalizers,
          spec: spec.data as Record<string, unknown>,
          status: { phase: 'Pending' },
        },
        { actor: `system:agent:${target(c)}` },
        { parent: { kind: 'Project', project: '', name: b.project }, admission: guard(c) },
      );
      return c.json(created);
    },
  });
}
