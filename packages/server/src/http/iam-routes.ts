import { QUOTA_NAMES, nameSchema, problemSchema } from '@kumo/api';
import type pg from 'pg';
import { z } from 'zod';
import type { QuotaStore } from '../quotas/quota-store.js';
import { NotFoundError } from '../errors.js';
import { orgOfProject, platformResourceExists } from '../store/resource-rows.js';
import { type MemberRouteDeps, memberSchema, registerMemberRoutes } from './member-routes.js';
import { writeContext } from './request-context.js';
import { type AppContext, type KumoRouter, validated } from './router.js';

const userSchema = z
  .object({
    name: z.string(),
    displayName: z.string().nullable(),
    email: z.string().nullable(),
    createdAt: z.string(),
  })
  .meta({ id: 'User' });
const userCreate = z
  .strictObject({
    name: nameSchema,
    displayName: z.string().max(200).optional(),
    email: z.email().max(320).optional(),
  })
  .meta({ id: 'UserCreate' });

const quotaReport = z
  .object({
    scope: z.enum(['org', 'project']),
    name: z.string(),
    items: z.array(
      z.object({
        quota: z.enum(QUOTA_NAMES),
        limit: z.number().int().nullable().meta({ description: 'null: no limit at this level' }),
        used: z.number().int(),
        remaining: z.number().int().nullable(),
      }),
    ),
  })
  .meta({ id: 'QuotaReport' });
const quotaPatch = z
  .strictObject(
    Object.fromEntries(
      QUOTA_NAMES.map((q) => [q, z.number().int().min(0).max(1_000_000).nullable().optional()]),
    ) as Record<(typeof QUOTA_NAMES)[number], z.ZodOptional<z.ZodNullable<z.ZodNumber>>>,
  )
  .meta({ id: 'QuotaPatch', description: 'Limits to change; null removes a limit.' });

export interface IamRouteDeps extends MemberRouteDeps {
  quotas: QuotaStore;
}

const problems = {
  403: { description: 'Not allowed', content: { 'application/problem+json': { schema: problemSchema } } },
  404: { description: 'Not found', content: { 'application/problem+json': { schema: problemSchema } } },
  409: { description: 'Conflict', content: { 'application/problem+json': { schema: problemSchema } } },
};
const json = <S extends z.ZodType>(description: string, schema: S) => ({
  description,
  content: { 'application/json': { schema } },
});
const body = <S extends z.ZodType>(schema: S) => ({
  body: { content: { 'application/json': { schema } }, required: true },
});

/** Users (operators), org members and invitations (member-routes.ts), and quotas with their usage. */
export function registerIamRoutes(router: KumoRouter, deps: IamRouteDeps): void {
  const operator = { operator: true } as const;
  const userParam = z.object({ name: nameSchema });

  router.add({
    method: 'post',
    path: '/v1/users',
    tags: ['Users'],
    summary: 'Create a user (a person who can be made a member of orgs)',
    access: operator,
    request: body(userCreate),
    responses: { 201: json('Created', userSchema), ...problems },
    handler: async (c) => {
      const input = validated<z.infer<typeof userCreate>>(c, 'json');
      return c.json(await deps.memberships.createUser(input, writeContext(c)), 201);
    },
  });

  router.add({
    method: 'get',
    path: '/v1/users',
    tags: ['Users'],
    summary: 'Users',
    access: operator,
    responses: { 200: json('Users by name', z.object({ items: z.array(userSchema) })) },
    handler: async (c) => c.json({ items: await deps.memberships.listUsers() }),
  });

  router.add({
    method: 'get',
    path: '/v1/users/{name}',
    tags: ['Users'],
    summary: 'A user and their memberships',
    access: operator,
    request: { params: userParam },
    responses: {
      200: json('The user', userSchema.extend({ memberships: z.array(memberSchema) })),
      ...problems,
    },
    handler: async (c) => {
      const { name } = validated<{ name: string }>(c, 'param');
      const user = await deps.memberships.getUser(name);
      if (!user) throw new NotFoundError(`User "${name}" does not exist.`);
      return c.json({ ...user, memberships: await deps.memberships.membershipsOf(name) });
    },
  });

  router.add({
    method: 'delete',
    path: '/v1/users/{name}',
    tags: ['Users'],
    summary: 'Remove a user: their memberships go and their tokens stop working',
    access: operator,
    request: { params: userParam },
    responses: { 200: json('Removed', userSchema), ...problems },
    handler: async (c) => {
      const { name } = validated<{ name: string }>(c, 'param');
      return c.json(await deps.memberships.deleteUser(name, writeContext(c)));
    },
  });

  registerMemberRoutes(router, deps);

  const orgParam = z.object({ org: nameSchema });
  for (const scope of ['org', 'project'] as const) {
    const path = scope === 'org' ? '/v1/orgs/{org}/quotas' : '/v1/projects/{project}/quotas';
    const params = scope === 'org' ? orgParam : z.object({ project: nameSchema });
    const where = scope === 'org' ? { orgParam: 'org' } : { projectParam: 'project' };
    const nameOf = (c: AppContext) => validated<{ org?: string; project?: string }>(c, 'param')[scope]!;
    router.add({
      method: 'get',
      path,
      tags: ['Quotas'],
      summary: `The ${scope}'s quotas and how much of each is used`,
      access: { permission: 'usage.read', in: where },
      request: { params },
      responses: { 200: json('Quotas with usage', quotaReport), ...problems },
      handler: async (c) => {
        const name = nameOf(c);
        await requireScope(deps.pool, scope, name);
        return c.json(await deps.quotas.report(scope, name));
      },
    });
    router.add({
      method: 'patch',
      path,
      tags: ['Quotas'],
      summary:
        scope === 'org'
          ? "Change an org's quotas (operators)"
          : "Change a project's quotas (org owners and admins), within the org's",
      access: scope === 'org' ? operator : { permission: 'quotas.manage', in: where },
      // A merge patch of the limits, sent as either media type (the console sends merge patches).
      request: {
        params,
        body: {
          content: {
            'application/json': { schema: quotaPatch },
            'application/merge-patch+json': { schema: quotaPatch },
          },
          required: true,
        },
      },
      responses: { 200: json('Quotas with usage', quotaReport), ...problems },
      handler: async (c) => {
        const name = nameOf(c);
        const org = scope === 'org' ? name : await orgOfProject(deps.pool, name);
        await requireScope(deps.pool, scope, name);
        const change = validated<Record<string, number | null | undefined>>(c, 'json');
        const limits = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined));
        return c.json(await deps.quotas.set(scope, name, limits, writeContext(c), org!));
      },
    });
  }
}

/** Operators pass authorization for any name, so the org or project must be checked to exist. */
async function requireScope(pool: pg.Pool, scope: 'org' | 'project', name: string): Promise<void> {
  const kind = scope === 'org' ? 'Org' : 'Project';
  if (!(await platformResourceExists(pool, kind, name)))
    throw new NotFoundError(`${kind} "${name}" does not exist.`);
}
