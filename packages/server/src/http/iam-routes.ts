import { QUOTA_NAMES, nameSchema, problemSchema } from '@kumo/api';
import type pg from 'pg';
import { z } from 'zod';
import type { Authorizer } from '../auth/authorizer.js';
import type { Membership, MembershipStore } from '../auth/membership-store.js';
import { MEMBER_ROLES } from '../auth/roles.js';
import { ForbiddenError, NotFoundError } from '../errors.js';
import type { QuotaStore } from '../quotas/quota-store.js';
import { orgOfProject, platformResourceExists, requireProjectsOf } from '../store/resource-rows.js';
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

const memberSchema = z
  .object({
    org: z.string(),
    user: z.string(),
    role: z.enum(MEMBER_ROLES),
    projects: z.array(z.string()).nullable().meta({ description: 'null: the whole org' }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Member' });
const memberPut = z
  .strictObject({
    role: z.enum(MEMBER_ROLES),
    projects: z.array(nameSchema).min(1).max(100).nullable().optional().meta({
      description: 'Limit the role to these projects of the org; leave out (or null) for the whole org.',
    }),
  })
  .meta({ id: 'MemberPut' });

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

export interface IamRouteDeps {
  memberships: MembershipStore;
  quotas: QuotaStore;
  authorizer: Authorizer;
  pool: pg.Pool;
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

/** Users (operators), org members (owners and admins) and quotas with their usage. */
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

  const orgParam = z.object({ org: nameSchema });
  const memberParam = z.object({ org: nameSchema, user: nameSchema });

  router.add({
    method: 'get',
    path: '/v1/orgs/{org}/members',
    tags: ['Members'],
    summary: "The org's members and their roles",
    access: { permission: 'org.read', in: { orgParam: 'org' } },
    request: { params: orgParam },
    responses: { 200: json('Members by user name', z.object({ items: z.array(memberSchema) })), ...problems },
    handler: async (c) => {
      const { org } = validated<{ org: string }>(c, 'param');
      await requireScope(deps.pool, 'org', org);
      return c.json({ items: await deps.memberships.members(org) });
    },
  });

  router.add({
    method: 'put',
    path: '/v1/orgs/{org}/members/{user}',
    tags: ['Members'],
    summary:
      'Add a member or change their role (owners only for the owner role); an org keeps at least one owner',
    access: { permission: 'members.manage', in: { orgParam: 'org' } },
    request: { params: memberParam, ...body(memberPut) },
    responses: {
      200: json('The membership', memberSchema),
      ...problems,
      422: json('Invalid', problemSchema),
    },
    handler: async (c) => {
      const { org, user } = validated<{ org: string; user: string }>(c, 'param');
      const input = validated<z.infer<typeof memberPut>>(c, 'json');
      await requireScope(deps.pool, 'org', org);
      await requireProjectsOf(deps.pool, org, input.projects);
      const mayManageOwners = await canManageOwners(deps, c, org);
      const membership = await deps.memberships.setMember(
        { org, user, role: input.role, projects: input.projects ?? null },
        (current) => {
          if ((input.role === 'owner' || current?.role === 'owner') && !mayManageOwners) {
            throw ownersOnly(org);
          }
        },
        writeContext(c),
      );
      return c.json(membership);
    },
  });

  router.add({
    method: 'delete',
    path: '/v1/orgs/{org}/members/{user}',
    tags: ['Members'],
    summary: 'Remove a member (owners only for owners); the last owner cannot be removed',
    access: { permission: 'members.manage', in: { orgParam: 'org' } },
    request: { params: memberParam },
    responses: { 200: json('The removed membership', memberSchema), ...problems },
    handler: async (c) => {
      const { org, user } = validated<{ org: string; user: string }>(c, 'param');
      const mayManageOwners = await canManageOwners(deps, c, org);
      const removed = await deps.memberships.removeMember(
        org,
        user,
        (current: Membership) => {
          if (current.role === 'owner' && !mayManageOwners) throw ownersOnly(org);
        },
        writeContext(c),
      );
      return c.json(removed);
    },
  });

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
      request: { params, ...body(quotaPatch) },
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

async function canManageOwners(deps: IamRouteDeps, c: AppContext, org: string): Promise<boolean> {
  const grant = await deps.authorizer.grantIn(c.get('principal')!, org);
  return grant?.permissions.has('owners.manage') === true && grant.projects === null;
}

function ownersOnly(org: string): ForbiddenError {
  return new ForbiddenError(`Only owners of org "${org}" may make, change or remove owners.`);
}

/** Operators pass authorization for any name, so the org or project must be checked to exist. */
async function requireScope(pool: pg.Pool, scope: 'org' | 'project', name: string): Promise<void> {
  const kind = scope === 'org' ? 'Org' : 'Project';
  if (!(await platformResourceExists(pool, kind, name)))
    throw new NotFoundError(`${kind} "${name}" does not exist.`);
}
