import { memberProjectsSchema, memberPutSchema, nameSchema, problemSchema } from '@kumo/api';
import type pg from 'pg';
import { z } from 'zod';
import { type Authorizer, userName } from '../auth/authorizer.js';
import { INVITATION_TTL_DAYS, type Invitation, InvitationStore } from '../auth/invitation-store.js';
import type { Membership, MembershipStore } from '../auth/membership-store.js';
import { MEMBER_ROLES } from '../auth/roles.js';
import { ForbiddenError, NotFoundError } from '../errors.js';
import { platformResourceExists, requireProjectsOf } from '../store/resource-rows.js';
import { writeContext } from './request-context.js';
import { type AppContext, type KumoRouter, validated } from './router.js';

export const memberSchema = z
  .object({
    org: z.string(),
    user: z.string(),
    role: z.enum(MEMBER_ROLES),
    projects: z.array(z.string()).nullable().meta({ description: 'null: the whole org' }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Member' });
const projectsField = memberProjectsSchema;
const memberPut = memberPutSchema;

const invitationSchema = z
  .object({
    id: z.string(),
    org: z.string(),
    user: z.string().meta({ description: 'The user name invited; only its user can accept' }),
    role: z.enum(MEMBER_ROLES),
    projects: z.array(z.string()).nullable().meta({ description: 'null: the whole org' }),
    invitedBy: z.string(),
    createdAt: z.string(),
    expiresAt: z.string(),
  })
  .meta({ id: 'Invitation' });
const invitationCreate = z
  .strictObject({ user: nameSchema, role: z.enum(MEMBER_ROLES), projects: projectsField })
  .meta({ id: 'InvitationCreate' });

export interface MemberRouteDeps {
  memberships: MembershipStore;
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

/**
 * An org's members, and the invitations by which people join it: owners and admins invite a user
 * name, and only the user of that name, with their own token, accepts (or declines). Operators
 * administer every user and set memberships directly.
 */
export function registerMemberRoutes(router: KumoRouter, deps: MemberRouteDeps): void {
  const invitations = new InvitationStore(deps.pool, deps.memberships);
  const orgParam = z.object({ org: nameSchema });
  const memberParam = z.object({ org: nameSchema, user: nameSchema });
  const manage = { permission: 'members.manage', in: { orgParam: 'org' } } as const;

  router.add({
    method: 'get',
    path: '/v1/orgs/{org}/members',
    tags: ['Members'],
    summary: "The org's members and their roles",
    access: { permission: 'members.read', in: { orgParam: 'org' } },
    request: { params: orgParam },
    responses: { 200: json('Members by user name', z.object({ items: z.array(memberSchema) })), ...problems },
    handler: async (c) => {
      const { org } = validated<{ org: string }>(c, 'param');
      await requireOrg(deps.pool, org);
      return c.json({ items: await deps.memberships.members(org) });
    },
  });

  router.add({
    method: 'put',
    path: '/v1/orgs/{org}/members/{user}',
    tags: ['Members'],
    summary:
      "Change a member's role (owners only for the owner role); operators also add members. An org keeps at least one owner",
    description:
      'Owners and admins change existing members only: anyone else answers 404, whether or not a user has the name. They invite people instead (POST /v1/orgs/{org}/invitations).',
    access: manage,
    request: { params: memberParam, ...body(memberPut) },
    responses: {
      200: json('The membership', memberSchema),
      ...problems,
      422: json('Invalid', problemSchema),
    },
    handler: async (c) => {
      const { org, user } = validated<{ org: string; user: string }>(c, 'param');
      const input = validated<z.infer<typeof memberPut>>(c, 'json');
      await requireOrg(deps.pool, org);
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
        { mayAdd: c.get('principal')!.kind === 'operator' },
      );
      return c.json(membership);
    },
  });

  router.add({
    method: 'delete',
    path: '/v1/orgs/{org}/members/{user}',
    tags: ['Members'],
    summary: 'Remove a member (owners only for owners); the last owner cannot be removed',
    access: manage,
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

  router.add({
    method: 'post',
    path: '/v1/orgs/{org}/invitations',
    tags: ['Members'],
    summary: 'Invite a user name into the org with a role (owners only for the owner role)',
    description: `The answer is the same whether or not a user has the name. The invitation waits for that user to accept or decline it, for ${INVITATION_TTL_DAYS} days; inviting the name again replaces it.`,
    access: manage,
    request: { params: orgParam, ...body(invitationCreate) },
    responses: {
      201: json('The pending invitation', invitationSchema),
      ...problems,
      422: json('Invalid', problemSchema),
    },
    handler: async (c) => {
      const { org } = validated<{ org: string }>(c, 'param');
      const input = validated<z.infer<typeof invitationCreate>>(c, 'json');
      await requireOrg(deps.pool, org);
      await requireProjectsOf(deps.pool, org, input.projects);
      const mayManageOwners = await canManageOwners(deps, c, org);
      if (input.role === 'owner' && !mayManageOwners) throw ownersOnly(org);
      const invitation = await invitations.invite(
        { org, user: input.user, role: input.role, projects: input.projects ?? null },
        writeContext(c),
        mayManageOwners,
      );
      return c.json(invitation, 201);
    },
  });

  router.add({
    method: 'get',
    path: '/v1/orgs/{org}/invitations',
    tags: ['Members'],
    summary: "The org's pending invitations",
    access: manage,
    request: { params: orgParam },
    responses: {
      200: json('Pending invitations by user name', z.object({ items: z.array(invitationSchema) })),
      ...problems,
    },
    handler: async (c) => {
      const { org } = validated<{ org: string }>(c, 'param');
      await requireOrg(deps.pool, org);
      return c.json({ items: await invitations.ofOrg(org) });
    },
  });

  router.add({
    method: 'delete',
    path: '/v1/orgs/{org}/invitations/{id}',
    tags: ['Members'],
    summary: 'Cancel a pending invitation (owners only for the owner role)',
    access: manage,
    request: { params: z.object({ org: nameSchema, id: z.uuid() }) },
    responses: { 200: json('The cancelled invitation', invitationSchema), ...problems },
    handler: async (c) => {
      const { org, id } = validated<{ org: string; id: string }>(c, 'param');
      const mayManageOwners = await canManageOwners(deps, c, org);
      const cancelled = await invitations.cancel(
        org,
        id,
        (invitation: Invitation) => {
          if (invitation.role === 'owner' && !mayManageOwners) throw ownersOnly(org);
        },
        writeContext(c),
      );
      return c.json(cancelled);
    },
  });

  router.add({
    method: 'get',
    path: '/v1/invitations',
    tags: ['Members'],
    summary: "Your pending invitations (operators: everyone's)",
    access: { authenticated: 'each user sees only the invitations made out to them' },
    responses: { 200: json('Pending invitations by org', z.object({ items: z.array(invitationSchema) })) },
    handler: async (c) => {
      const p = c.get('principal')!;
      if (p.kind === 'service') return c.json({ items: [] });
      const items = await invitations.pending(
        p.kind === 'operator' ? 'all' : { user: userName(p), org: p.org },
      );
      return c.json({ items });
    },
  });

  for (const answer of ['accept', 'decline'] as const) {
    router.add({
      method: 'post',
      path: `/v1/invitations/{id}/${answer}`,
      tags: ['Members'],
      summary:
        answer === 'accept'
          ? 'Accept an invitation made out to you: you become a member with its role'
          : 'Decline an invitation made out to you',
      access: {
        authenticated:
          'only the invited user, with their own token; anyone else is answered as if it did not exist',
      },
      request: { params: z.object({ id: z.uuid() }) },
      responses: {
        200:
          answer === 'accept'
            ? json('Your membership', memberSchema)
            : json('The declined invitation', invitationSchema),
        ...problems,
      },
      handler: async (c) => {
        const { id } = validated<{ id: string }>(c, 'param');
        const p = c.get('principal')!;
        if (p.kind === 'operator') {
          throw new ForbiddenError(
            'Only the invited user accepts or declines an invitation. Operators set memberships directly (PUT /v1/orgs/{org}/members/{user}) and cancel invitations (DELETE /v1/orgs/{org}/invitations/{id}).',
          );
        }
        if (p.kind === 'service') {
          throw new NotFoundError(`You have no invitation ${id}. See GET /v1/invitations.`);
        }
        const result =
          answer === 'accept'
            ? await invitations.accept(id, userName(p), p.org, writeContext(c))
            : await invitations.decline(id, userName(p), p.org, writeContext(c));
        return c.json(result);
      },
    });
  }
}

async function canManageOwners(deps: MemberRouteDeps, c: AppContext, org: string): Promise<boolean> {
  const grant = await deps.authorizer.grantIn(c.get('principal')!, org);
  return grant?.permissions.has('owners.manage') === true && grant.projects === null;
}

function ownersOnly(org: string): ForbiddenError {
  return new ForbiddenError(`Only owners of org "${org}" may make, change or remove owners.`);
}

/** Operators pass authorization for any name, so the org must be checked to exist. */
async function requireOrg(pool: pg.Pool, org: string): Promise<void> {
  if (!(await platformResourceExists(pool, 'Org', org)))
    throw new NotFoundError(`Org "${org}" does not exist.`);
}
