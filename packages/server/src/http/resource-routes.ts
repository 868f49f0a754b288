import { createHash } from 'node:crypto';
import {
  type KindDefinition,
  type LabelRequirement,
  type Resource,
  LabelSelectorSyntaxError,
  nameSchema,
  parseLabelSelector,
  problemSchema,
  resourceInputSchema,
  resourceSchema,
} from '@kumo/api';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import type { DryRunResult, ResourceInput, ResourceService } from '../resources/resource-service.js';
import type { ResourceKey } from '../store/resource-rows.js';
import { type KumoRouter, type AppContext, validated } from './router.js';
import { type WatchDeps, watch } from './watch.js';
import { kindAccess } from './kind-access.js';
import { writeContext } from './request-context.js';
import type { Authorizer } from '../auth/authorizer.js';

const problems = {
  400: {
    description: 'Malformed request',
    content: { 'application/problem+json': { schema: problemSchema } },
  },
  401: { description: 'No valid token', content: { 'application/problem+json': { schema: problemSchema } } },
  404: { description: 'Not found', content: { 'application/problem+json': { schema: problemSchema } } },
  422: { description: 'Invalid fields', content: { 'application/problem+json': { schema: problemSchema } } },
};
const writeProblems = {
  ...problems,
  409: { description: 'Conflict', content: { 'application/problem+json': { schema: problemSchema } } },
  412: {
    description: 'If-Match did not match',
    content: { 'application/problem+json': { schema: problemSchema } },
  },
};

/** A resourceVersion as a client sends it back: digits, no larger than PostgreSQL's bigint. */
const resourceVersion = z
  .string()
  .regex(/^\d{1,19}$/, { message: 'must be a resourceVersion (digits, as Kumo sent it)', abort: true })
  .refine((v) => BigInt(v) <= 9_223_372_036_854_775_807n, 'is larger than any resourceVersion');

const listQuery = z.strictObject({
  labelSelector: z
    .string()
    .optional()
    .meta({ description: 'e.g. env=prod,tier!=db,region in (eu,us),!legacy' }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  continue: z.string().optional().meta({ description: 'From the previous page; opaque.' }),
  watch: z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .meta({ description: 'Stream changes as Server-Sent Events.' }),
  resourceVersion: resourceVersion
    .optional()
    .meta({ description: 'With watch: resume after this resourceVersion.' }),
});
const listHeaders = z.object({
  'last-event-id': resourceVersion.optional().meta({
    description: 'With watch and no resourceVersion: resume after this one (EventSource sends it).',
  }),
});

const ifMatchHeader = z.object({
  'if-match': z.string().optional().meta({ description: 'resourceVersion precondition' }),
});
const mergePatchBody = {
  content: {
    'application/merge-patch+json': { schema: z.record(z.string(), z.unknown()) },
    'application/json': { schema: z.record(z.string(), z.unknown()) },
  },
  required: true,
};

/** Registers list/watch, create, get, replace, patch, delete, status and events routes for a kind. */
export function registerResourceRoutes(
  router: KumoRouter,
  def: KindDefinition,
  service: ResourceService,
  watchDeps: WatchDeps,
  authorizer: Authorizer,
): void {
  const rules = kindAccess(def);
  const scoped = def.scope === 'project';
  const base = scoped ? `/v1/projects/{project}/${def.plural}` : `/v1/${def.plural}`;
  const item = `${base}/{name}`;
  const baseParams = scoped ? z.object({ project: nameSchema }) : z.object({});
  const itemParams = scoped
    ? z.object({ project: nameSchema, name: nameSchema })
    : z.object({ name: nameSchema });
  const schema = resourceSchema(def);
  const input = resourceInputSchema(def);
  const ok = (description: string) => ({ description, content: { 'application/json': { schema } } });
  const tags = [def.kind];
  const keyOf = (c: AppContext): ResourceKey => {
    const p = validated<{ project?: string; name: string }>(c, 'param');
    return { kind: def.kind, project: p.project ?? '', name: p.name };
  };
  const projectOf = (c: AppContext) => validated<{ project?: string }>(c, 'param').project ?? '';

  router.add({
    method: 'get',
    path: base,
    tags,
    summary: `List or watch ${def.plural}`,
    access: rules.list,
    request: { params: baseParams, query: listQuery, headers: listHeaders },
    responses: {
      200: {
        description: `A page of ${def.plural}, or with watch=true a text/event-stream of changes`,
        content: {
          'application/json': {
            schema: z.object({
              apiVersion: z.string(),
              kind: z.literal(`${def.kind}List`),
              metadata: z.object({ resourceVersion: z.string(), continue: z.string().optional() }),
              items: z.array(schema),
            }),
          },
          'text/event-stream': { schema: z.string() },
        },
      },
      ...problems,
      410: {
        description: 'resourceVersion too old: list again',
        content: { 'application/problem+json': { schema: problemSchema } },
      },
    },
    handler: async (c) => {
      const q = validated<z.infer<typeof listQuery>>(c, 'query');
      const selector = parseSelector(q.labelSelector);
      const only = rules.listScope
        ? await authorizer.listScope(c.get('principal')!, rules.listScope)
        : undefined;
      if (q.watch === 'true' || q.watch === '1') {
        const from = q.resourceVersion ?? c.req.header('last-event-id');
        const recheck = async () => {
          await c.get('recheckAccess')();
          return rules.listScope ? authorizer.listScope(c.get('principal')!, rules.listScope) : undefined;
        };
        return watch(c, watchDeps, def, projectOf(c), selector, from, only, recheck);
      }
      const page = await service.list(def, projectOf(c), {
        selector,
        limit: q.limit,
        ...(q.continue ? { continue: q.continue } : {}),
        ...(only ? { only } : {}),
      });
      return c.json({
        apiVersion: 'kumo.dev/v1',
        kind: `${def.kind}List`,
        metadata: {
          resourceVersion: page.resourceVersion,
          ...(page.continue ? { continue: page.continue } : {}),
        },
        items: page.items,
      });
    },
  });

  router.add({
    method: 'post',
    path: base,
    tags,
    summary: `Create a ${def.kind}`,
    access: rules.create,
    request: {
      params: baseParams,
      headers: z.object({
        'idempotency-key': z
          .string()
          .max(255)
          .optional()
          .meta({ description: 'Retries with the same key return the first result.' }),
      }),
      body: { content: { 'application/json': { schema: input } }, required: true },
    },
    responses: { 201: ok('Created'), ...writeProblems },
    handler: async (c) => {
      const body = validated<ResourceInput>(c, 'json');
      const ctx = writeContext(c);
      const idemKey = c.req.header('idempotency-key');
      let idempotency;
      if (idemKey) {
        const requestHash = createHash('sha256')
          .update(`${c.req.path}\n${JSON.stringify(body)}`)
          .digest('hex');
        idempotency = { principal: ctx.actor, key: idemKey, requestHash };
        const replay = await replayIdempotent(service, idempotency);
        if (replay) return replay;
        try {
          return created(c, await service.create(def, projectOf(c), body, ctx, idempotency));
        } catch (err) {
          // A concurrent request with the same key may have won the race; answer with its result.
          const raced = await replayIdempotent(service, idempotency);
          if (raced) return raced;
          throw err;
        }
      }
      return created(c, await service.create(def, projectOf(c), body, ctx));
    },
  });

  router.add({
    method: 'get',
    path: item,
    tags,
    summary: `Get a ${def.kind}`,
    access: rules.read,
    request: { params: itemParams },
    responses: { 200: ok('The resource'), ...problems },
    handler: async (c) => withEtag(c, await service.get(def, keyOf(c))),
  });

  router.add({
    method: 'put',
    path: item,
    tags,
    summary: `Replace a ${def.kind}'s spec and labels`,
    access: rules.update,
    request: {
      params: itemParams,
      headers: ifMatchHeader,
      query: dryRunQuery,
      body: { content: { 'application/json': { schema: input } }, required: true },
    },
    responses: { 200: ok('Updated (or, with dryRun, what would change)'), ...writeProblems },
    handler: async (c) =>
      written(
        c,
        await service.replace(
          def,
          keyOf(c),
          validated<ResourceInput>(c, 'json'),
          writeContext(c),
          ifMatch(c),
          isDryRun(c),
        ),
      ),
  });

  router.add({
    method: 'patch',
    path: item,
    tags,
    summary: `Change a ${def.kind} with a JSON merge patch (RFC 7386)`,
    access: rules.update,
    request: { params: itemParams, headers: ifMatchHeader, query: dryRunQuery, body: mergePatchBody },
    responses: { 200: ok('Updated (or, with dryRun, what would change)'), ...writeProblems },
    handler: async (c) =>
      written(
        c,
        await service.patch(def, keyOf(c), await c.req.json(), writeContext(c), ifMatch(c), isDryRun(c)),
      ),
  });

  router.add({
    method: 'delete',
    path: item,
    tags,
    summary: `Delete a ${def.kind}`,
    description:
      '200 with the final object when it is gone at once; 202 with the object (phase Deleting) while finalizers remain.',
    access: rules.delete,
    request: { params: itemParams, headers: ifMatchHeader },
    responses: { 200: ok('Deleted'), 202: ok('Deletion started'), ...writeProblems },
    handler: async (c) => {
      const result = await service.delete(keyOf(c), writeContext(c), ifMatch(c));
      return c.json(result.resource, result.gone ? 200 : 202);
    },
  });

  for (const method of ['put', 'patch'] as const) {
    router.add({
      method,
      path: `${item}/status`,
      tags,
      summary: method === 'put' ? `Replace a ${def.kind}'s status` : `Merge-patch a ${def.kind}'s status`,
      description: 'Status is written by agents and controllers only; spec and metadata are untouched.',
      access: rules.writeStatus,
      request: {
        params: itemParams,
        headers: ifMatchHeader,
        body:
          method === 'put'
            ? { content: { 'application/json': { schema: def.status } }, required: true }
            : mergePatchBody,
      },
      responses: { 200: ok('Updated'), ...writeProblems },
      handler: async (c) =>
        withEtag(
          c,
          await service.writeStatus(
            def,
            keyOf(c),
            await c.req.json(),
            method === 'patch',
            writeContext(c),
            ifMatch(c),
          ),
        ),
    });
  }

  router.add({
    method: 'get',
    path: `${item}/events`,
    tags,
    summary: `Events of a ${def.kind}`,
    access: rules.read,
    request: { params: itemParams },
    responses: {
      200: {
        description: 'Events, oldest first; repeats merged with a count',
        content: {
          'application/json': {
            schema: z.object({
              items: z.array(
                z.object({
                  type: z.enum(['Normal', 'Warning']),
                  reason: z.string(),
                  message: z.string(),
                  count: z.number().int(),
                  firstTimestamp: z.string(),
                  lastTimestamp: z.string(),
                }),
              ),
            }),
          },
        },
      },
      ...problems,
    },
    handler: async (c) => c.json({ items: await service.listEvents(def, keyOf(c)) }),
  });
}

function parseSelector(selector: string | undefined): LabelRequirement[] {
  if (!selector) return [];
  try {
    return parseLabelSelector(selector);
  } catch (err) {
    if (err instanceof LabelSelectorSyntaxError) {
      throw new ValidationError(`labelSelector: ${err.message}`, [
        { field: 'query.labelSelector', message: err.message },
      ]);
    }
    throw err;
  }
}

function ifMatch(c: AppContext): string | undefined {
  const header = c.req.header('if-match');
  if (!header || header.trim() === '*') return undefined;
  return header
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}

const dryRunQuery = z.strictObject({
  dryRun: z.enum(['true', 'false', '1', '0']).optional().meta({
    description:
      'Validate and describe the change without making it: answers {kind: "DryRun", resource, effect: "reload" | "restart" | "none", changes}.',
  }),
});

function isDryRun(c: AppContext): boolean {
  const q = validated<{ dryRun?: string }>(c, 'query').dryRun;
  return q === 'true' || q === '1';
}

function written(c: AppContext, result: Resource | DryRunResult): Response {
  return result.kind === 'DryRun' ? c.json(result) : withEtag(c, result as Resource);
}

function withEtag(c: AppContext, resource: Resource, status: 200 | 201 = 200): Response {
  c.header('ETag', `"${resource.metadata.resourceVersion}"`);
  return c.json(resource, status);
}

function created(c: AppContext, resource: Resource): Response {
  c.header('Location', `${c.req.path}/${resource.metadata.name}`);
  return withEtag(c, resource, 201);
}

async function replayIdempotent(
  service: ResourceService,
  idempotency: { principal: string; key: string; requestHash: string },
): Promise<Response | undefined> {
  const stored = await service.findIdempotent(idempotency.principal, idempotency.key);
  if (!stored) return undefined;
  if (stored.requestHash !== idempotency.requestHash) {
    throw new ValidationError(
      'This Idempotency-Key was already used for a different request. Use a new key for a new request.',
      [{ field: 'header.idempotency-key', message: 'already used for a different request' }],
    );
  }
  return new Response(JSON.stringify(stored.body), {
    status: stored.status,
    headers: { 'content-type': 'application/json', 'idempotent-replayed': 'true' },
  });
}
