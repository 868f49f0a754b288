import { isDeepStrictEqual } from 'node:util';
import {
  type EngineInfo,
  type Resource,
  databaseKind,
  databaseUserKind,
  labelValueSchema,
  resourceInputSchema,
} from '@kumo/api';
import type { z } from 'zod';
import {
  AlreadyExistsError,
  ConflictError,
  ForbiddenError,
  KumoError,
  NotFoundError,
  QuotaExceededError,
  ValidationError,
} from '../errors.js';
import { type DatabaseUserRouteDeps, userCredentials } from '../http/database-user-routes.js';
import type { ResourceService } from '../resources/resource-service.js';
import { parseOrThrow } from '../resources/validation.js';
import type { ResourceKey } from '../store/resource-rows.js';
import { recordAudit } from '../store/audit-log.js';
import type { WriteContext } from '../store/resource-store.js';
import { withTransaction } from '../store/sql.js';
import {
  type CatalogPlan,
  bindingParametersSchema,
  catalogOf,
  findPlan,
  instanceParametersSchema,
} from './osb-catalog.js';
import { OsbError, asyncRequired } from './osb-error.js';
import { LABELS, bindingName, instanceName, planIdOf, serviceIdOf } from './osb-ids.js';
import { lastOperationOf } from './osb-state.js';

export interface BrokerDeps extends DatabaseUserRouteDeps {
  service: ResourceService;
  /** What the platform offers (the Ready targets' engines): the catalog. */
  engines: { offered(target?: string): Promise<EngineInfo[]> };
  /** How long a bind or unbind without accepts_incomplete waits for the user. Default: 30 s. */
  syncWaitMs?: number;
}

/** Who the broker acts for: the one project of its credential, and who asked (for the audit log). */
export interface BrokerCaller {
  project: string;
  ctx: WriteContext;
}

/** A broker answer: a status and its JSON body. */
export interface BrokerAnswer {
  status: 200 | 201 | 202 | 410;
  body: Record<string, unknown>;
}

/** The request fields of provision, update and bind, already checked to be the JSON object the route read. */
type Body = Record<string, unknown>;

const GONE: BrokerAnswer = { status: 410, body: {} };
const POLL_MS = 200;

/**
 * The Open Service Broker API over Kumo's resources: an instance is a Database named after its id
 * in the caller's project, a binding a DatabaseUser of it. Nothing else is stored: every answer,
 * last_operation included, is derived from those resources and their status. Throws OsbError for
 * every refusal the specification defines; domain errors are turned into OsbErrors here.
 */
export class Broker {
  constructor(private readonly deps: BrokerDeps) {}

  async catalog() {
    return catalogOf(await this.deps.engines.offered());
  }

  async provision(
    caller: BrokerCaller,
    instanceId: string,
    body: Body,
    acceptsIncomplete: boolean,
  ): Promise<BrokerAnswer> {
    const plan = await this.plan(body.service_id, body.plan_id);
    const parameters = parse(instanceParametersSchema, body.parameters ?? {}, 'parameters');
    const key = this.instanceKey(caller, instanceId);
    const existing = await this.find(key);
    if (existing) return this.provisionedAgain(existing, plan, parameters, acceptsIncomplete);
    if (!acceptsIncomplete) throw asyncRequired('Provisioning a database');
    const context = isObject(body.context) ? body.context : {};
    const labels = validLabels({
      [LABELS.service]: serviceIdOf(plan.engine.engine),
      [LABELS.plan]: planIdOf(plan.engine.engine, plan.plan.name),
      [LABELS.organization]: context.organization_guid ?? body.organization_guid,
      [LABELS.space]: context.space_guid ?? body.space_guid,
    });
    const input = parseOrThrowOsb(() =>
      parseOrThrow(
        resourceInputSchema(databaseKind),
        {
          metadata: { name: key.name, labels },
          spec: {
            engine: plan.engine.engine,
            version: plan.engine.versions[0],
            plan: plan.plan.name,
            ...parameters,
          },
        },
        'the Database of the instance',
      ),
    );
    try {
      await this.deps.service.create(databaseKind, caller.project, input as never, caller.ctx);
    } catch (err) {
      // The same request, at the same time: answered as a request that came second.
      if (err instanceof AlreadyExistsError)
        return this.provision(caller, instanceId, body, acceptsIncomplete);
      throw osbErrorOf(err);
    }
    return { status: 202, body: { operation: 'provision' } } satisfies BrokerAnswer;
  }

  /** A provision of an instance that exists: 200 when done and identical, 202 while in progress, 409 when different. */
  private provisionedAgain(
    db: Resource,
    plan: CatalogPlan,
    parameters: Record<string, unknown>,
    acceptsIncomplete: boolean,
  ): BrokerAnswer {
    const spec = db.spec as Record<string, unknown>;
    const same =
      spec.engine === plan.engine.engine &&
      spec.plan === plan.plan.name &&
      Object.entries(parameters).every(([field, value]) => isDeepStrictEqual(spec[field], value));
    if (!same || db.metadata.deletionTimestamp)
      throw new OsbError(
        409,
        db.metadata.deletionTimestamp
          ? 'This instance id is being deprovisioned; use a new id.'
          : 'An instance with this id exists with another service, plan or parameters.',
      );
    const state = lastOperationOf(db).state;
    if (state === 'succeeded') return { status: 200, body: {} };
    if (!acceptsIncomplete) throw asyncRequired('Provisioning a database');
    return { status: 202, body: { operation: 'provision' } };
  }

  async fetchInstance(caller: BrokerCaller, instanceId: string) {
    const db = await this.find(this.instanceKey(caller, instanceId));
    // Still being provisioned, it does not exist yet for the platform.
    if (!db || (db.metadata.generation === 1 && lastOperationOf(db).state !== 'succeeded'))
      throw new OsbError(404, 'No such service instance (or it is still being provisioned).');
    // "being updated and therefore cannot be fetched at this time" (OSB 2.17, fetching an instance).
    if (lastOperationOf(db).state === 'in progress')
      throw new OsbError(
        422,
        'The instance is being updated; fetch it when that is done.',
        'ConcurrencyError',
      );
    const spec = db.spec as Record<string, unknown>;
    return {
      service_id: serviceIdOf(String(spec.engine)),
      plan_id: planIdOf(String(spec.engine), String(spec.plan)),
      parameters: pick(spec, ['version', 'storageGB', 'parameters', 'acl']),
    };
  }

  async update(caller: BrokerCaller, instanceId: string, body: Body, acceptsIncomplete: boolean) {
    if (typeof body.service_id !== 'string' || !body.service_id)
      throw new OsbError(400, 'service_id is required: the id of the service of the instance.');
    const key = this.instanceKey(caller, instanceId);
    const db = await this.find(key);
    if (!db) throw new OsbError(404, 'No such service instance.');
    const spec = db.spec as Record<string, unknown>;
    if (body.service_id !== serviceIdOf(String(spec.engine)))
      throw new OsbError(400, "service_id is not the instance's service; a service cannot change.");
    const plan = body.plan_id === undefined ? undefined : await this.plan(body.service_id, body.plan_id);
    const parameters = parse(instanceParametersSchema, body.parameters ?? {}, 'parameters');
    const change: Record<string, unknown> = { ...parameters, ...(plan ? { plan: plan.plan.name } : {}) };
    const changed = Object.entries(change).filter(([field, value]) => !isDeepStrictEqual(spec[field], value));
    if (changed.length === 0)
      // The same update sent again while it runs: it is still being done (202 until it is).
      return (
        lastOperationOf(db).state === 'in progress' && db.metadata.generation > 1
          ? { status: 202, body: { operation: 'update' } }
          : { status: 200, body: {} }
      ) satisfies BrokerAnswer;
    if (db.metadata.deletionTimestamp || lastOperationOf(db).state === 'in progress')
      throw new OsbError(
        422,
        'Another operation on this instance is in progress; try again when it is done.',
        'ConcurrencyError',
      );
    if (!acceptsIncomplete) throw asyncRequired('Updating a database');
    await this.deps.service
      .patch(
        databaseKind,
        key,
        {
          metadata: plan ? { labels: { [LABELS.plan]: planIdOf(plan.engine.engine, plan.plan.name) } } : {},
          spec: Object.fromEntries(changed),
        },
        caller.ctx,
      )
      .catch((err: unknown) => {
        throw osbErrorOf(err);
      });
    return { status: 202, body: { operation: 'update' } } satisfies BrokerAnswer;
  }

  async deprovision(
    caller: BrokerCaller,
    instanceId: string,
    acceptsIncomplete: boolean,
  ): Promise<BrokerAnswer> {
    const key = this.instanceKey(caller, instanceId);
    const db = await this.find(key);
    if (!db) return GONE;
    if (!acceptsIncomplete) throw asyncRequired('Deprovisioning a database');
    // Its bindings go with it (a platform unbinds first; one that did not leaves no login behind).
    for (const user of await this.bindingsOf(caller, key.name))
      await this.deleteQuietly(
        { kind: 'DatabaseUser', project: caller.project, name: user.metadata.name },
        caller,
      );
    await this.deleteQuietly(key, caller);
    return { status: 202, body: { operation: 'deprovision' } };
  }

  async lastOperation(caller: BrokerCaller, instanceId: string): Promise<BrokerAnswer> {
    const db = await this.find(this.instanceKey(caller, instanceId));
    return db ? { status: 200, body: { ...lastOperationOf(db) } } : GONE;
  }

  async bind(
    caller: BrokerCaller,
    instanceId: string,
    bindingId: string,
    body: Body,
    acceptsIncomplete: boolean,
  ): Promise<BrokerAnswer> {
    const plan = await this.plan(body.service_id, body.plan_id);
    const { access = 'read-write' } = parse(bindingParametersSchema, body.parameters ?? {}, 'parameters');
    const instance = this.instanceKey(caller, instanceId);
    const db = await this.find(instance);
    if (!db) throw new OsbError(404, 'No such service instance.');
    if (plan.engine.engine !== (db.spec as { engine: string }).engine)
      throw new OsbError(400, 'service_id is not the service of this instance.');
    if (!plan.engine.capabilities.users)
      throw new OsbError(400, `${plan.engine.title} instances are not bindable on this platform.`);
    const key = this.bindingKey(caller, bindingId);
    const existing = await this.find(key);
    if (existing) {
      const spec = existing.spec as { database: string; access: string };
      if (spec.database !== instance.name || spec.access !== access)
        throw new OsbError(409, 'A binding with this id exists with another instance or parameters.');
      if (existing.metadata.deletionTimestamp)
        throw new OsbError(422, 'This binding is being removed; use a new id.', 'ConcurrencyError');
      if (lastOperationOf(existing).state === 'succeeded')
        return { status: 200, body: await this.bound(existing, caller) };
    } else {
      if (db.metadata.deletionTimestamp || lastOperationOf(db).state !== 'succeeded')
        throw new OsbError(
          422,
          `The instance is not ready for bindings yet (${lastOperationOf(db).description}); try again when its last operation succeeded.`,
          'ConcurrencyError',
        );
      const context = isObject(body.context) ? body.context : {};
      const resource = isObject(body.bind_resource) ? body.bind_resource : {};
      try {
        await this.deps.service.create(
          databaseUserKind,
          caller.project,
          {
            metadata: {
              name: key.name,
              labels: validLabels({
                [LABELS.instance]: instance.name,
                [LABELS.app]: resource.app_guid ?? body.app_guid,
                [LABELS.organization]: context.organization_guid,
                [LABELS.space]: context.space_guid,
              }),
            },
            spec: { database: instance.name, access },
          },
          caller.ctx,
        );
      } catch (err) {
        if (err instanceof AlreadyExistsError)
          return this.bind(caller, instanceId, bindingId, body, acceptsIncomplete);
        throw osbErrorOf(err);
      }
    }
    if (acceptsIncomplete) return { status: 202, body: { operation: 'bind' } };
    const user = (await this.waitFor(key, (u) => !!u && lastOperationOf(u).state !== 'in progress'))
      ?.resource;
    if (!user) {
      // Platforms do no orphan mitigation after a 422: the login it would have been goes now.
      await this.deleteQuietly(key, caller);
      throw asyncRequired('This binding takes longer than usual: it');
    }
    const outcome = lastOperationOf(user);
    if (outcome.state === 'failed') throw new OsbError(500, `The binding failed: ${outcome.description}`);
    return { status: existing ? 200 : 201, body: await this.bound(user, caller) };
  }

  async fetchBinding(caller: BrokerCaller, instanceId: string, bindingId: string) {
    const user = await this.bindingOf(caller, instanceId, bindingId);
    if (!user || lastOperationOf(user).state !== 'succeeded')
      throw new OsbError(404, 'No such service binding (or it is still being created).');
    return this.bound(user, caller);
  }

  async unbind(
    caller: BrokerCaller,
    instanceId: string,
    bindingId: string,
    acceptsIncomplete: boolean,
  ): Promise<BrokerAnswer> {
    const user = await this.bindingOf(caller, instanceId, bindingId);
    if (!user) return GONE;
    const key = this.bindingKey(caller, bindingId);
    await this.deleteQuietly(key, caller);
    if (acceptsIncomplete) return { status: 202, body: { operation: 'unbind' } };
    // The login is dropped on the server before the DatabaseUser goes: gone means revoked.
    if (!(await this.waitFor(key, (u) => u === undefined)))
      throw asyncRequired('Removing this binding takes longer than usual: it');
    return { status: 200, body: {} };
  }

  async bindingLastOperation(
    caller: BrokerCaller,
    instanceId: string,
    bindingId: string,
  ): Promise<BrokerAnswer> {
    const user = await this.bindingOf(caller, instanceId, bindingId);
    return user ? { status: 200, body: { ...lastOperationOf(user) } } : GONE;
  }

  /** What a platform hands an app: the user's login. */
  /** A binding's answer: its credentials, read like GET …/credentials reads them (in the audit log). */
  private async bound(user: Resource, caller: BrokerCaller) {
    const credentials = await withTransaction(this.deps.pool, async (client) => {
      const read = await userCredentials(this.deps, user, client);
      await recordAudit(client, caller.ctx, {
        action: 'read-credentials',
        kind: 'DatabaseUser',
        project: caller.project,
        name: user.metadata.name,
      });
      return read;
    });
    return {
      credentials,
      parameters: { access: (user.spec as { access: string }).access },
      ...(credentials.host && credentials.port
        ? { endpoints: [{ host: credentials.host, ports: [String(credentials.port)], protocol: 'tcp' }] }
        : {}),
    };
  }

  private async plan(serviceId: unknown, planId: unknown): Promise<CatalogPlan> {
    if (typeof serviceId !== 'string' || !serviceId || typeof planId !== 'string' || !planId)
      throw new OsbError(400, 'service_id and plan_id are required: ids from the catalog (GET /v2/catalog).');
    const plan = findPlan(await this.deps.engines.offered(), serviceId, planId);
    if (!plan)
      throw new OsbError(
        400,
        'service_id and plan_id name no plan of the catalog (GET /v2/catalog lists them).',
      );
    return plan;
  }

  private instanceKey(caller: BrokerCaller, instanceId: string): ResourceKey {
    return { kind: 'Database', project: caller.project, name: instanceName(instanceId) };
  }

  private bindingKey(caller: BrokerCaller, bindingId: string): ResourceKey {
    return { kind: 'DatabaseUser', project: caller.project, name: bindingName(bindingId) };
  }

  /** The binding, when it exists and belongs to the instance. */
  private async bindingOf(caller: BrokerCaller, instanceId: string, bindingId: string) {
    const user = await this.find(this.bindingKey(caller, bindingId));
    return user && (user.spec as { database: string }).database === instanceName(instanceId)
      ? user
      : undefined;
  }

  private async bindingsOf(caller: BrokerCaller, instance: string): Promise<Resource[]> {
    const { items } = await this.deps.service.list(databaseUserKind, caller.project, {
      selector: [{ key: LABELS.instance, operator: 'in', values: [instance] }],
      limit: 1000,
    });
    return items as Resource[];
  }

  private async find(key: ResourceKey): Promise<Resource | undefined> {
    const def = key.kind === 'Database' ? databaseKind : databaseUserKind;
    return this.deps.service.get(def, key).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
  }

  private async deleteQuietly(key: ResourceKey, caller: BrokerCaller): Promise<void> {
    await this.deps.service.delete(key, caller.ctx).catch((err: unknown) => {
      if (!(err instanceof NotFoundError)) throw osbErrorOf(err);
    });
  }

  /** Polls until done(resource) holds; undefined when that takes longer than syncWaitMs. */
  private async waitFor(
    key: ResourceKey,
    done: (resource: Resource | undefined) => boolean,
  ): Promise<{ resource: Resource | undefined } | undefined> {
    const deadline = Date.now() + (this.deps.syncWaitMs ?? 30_000);
    for (;;) {
      const resource = await this.find(key);
      if (done(resource)) return { resource };
      if (Date.now() > deadline) return undefined;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

/** A Kumo refusal as the OSB answer closest to it. */
function osbErrorOf(err: unknown): unknown {
  if (!(err instanceof KumoError)) return err;
  if (err instanceof ValidationError) return new OsbError(400, err.message);
  if (err instanceof NotFoundError) return new OsbError(404, err.message);
  if (err instanceof AlreadyExistsError || err instanceof ConflictError)
    return new OsbError(409, err.message);
  if (err instanceof QuotaExceededError || err instanceof ForbiddenError)
    return new OsbError(403, err.message);
  return err;
}

function parseOrThrowOsb<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw osbErrorOf(err);
  }
}

/** The request's parameters through the API's schema: a 400 naming each field that is wrong. */
function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) {
    // Only what was asked for: defaults would read as changes.
    const given = isObject(value) ? Object.keys(value) : [];
    return Object.fromEntries(
      Object.entries(result.data as Record<string, unknown>).filter(([k]) => given.includes(k)),
    ) as z.infer<S>;
  }
  const problems = result.error.issues.map((i) => `${[what, ...i.path.map(String)].join('.')}: ${i.message}`);
  throw new OsbError(400, `Invalid ${what}: ${problems.join('; ')}.`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The labels whose values Kumo can store (platform GUIDs are; anything else is left out). */
function validLabels(labels: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(labels).filter(
      (entry): entry is [string, string] =>
        typeof entry[1] === 'string' && labelValueSchema.safeParse(entry[1]).success,
    ),
  );
}

function pick(object: Record<string, unknown>, fields: string[]): Record<string, unknown> {
  return Object.fromEntries(fields.filter((f) => object[f] !== undefined).map((f) => [f, object[f]]));
}
