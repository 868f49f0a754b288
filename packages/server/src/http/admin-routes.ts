import { TOKEN_ROLES, nameSchema, problemSchema, tokenCreateSchema } from '@kumo/api';
import type pg from 'pg';
import { z } from 'zod';
import type { Authorizer, Grant } from '../auth/authorizer.js';
import type { MembershipStore } from '../auth/membership-store.js';
import { MEMBER_ROLES, type MemberRole, PERMISSIONS, ROLE_PERMISSIONS, isWithin } from '../auth/roles.js';
import {
  type NewToken,
  type Principal,
  type TokenScope,
  type TokenStore,
  inTokenScope,
} from '../auth/token-store.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import { queryAudit, recordAudit } from '../store/audit-log.js';
import { platformResourceExists, requireProjectsOf } from '../store/resource-rows.js';
import { writeContext } from './request-context.js';
import { type KumoRouter, validated } from './router.js';

const tokenInfo = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z
      .string()
      .meta({ description: 'The visible part of the secret (kumo_<prefix>_…), to recognise it.' }),
    principal: z.string().meta({ description: 'operator:<name>, user:<name> or service:<org>/<name>' }),
    role: z.enum(TOKEN_ROLES).meta({ description: 'The most this token may do.' }),
    org: z
      .string()
      .nullable()
      .meta({ description: 'The org a service token belongs to (or a personal token is limited to).' }),
    projects: z.array(z.string()).nullable(),
    createdBy: z.string().nullable(),
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    lastUsedAt: z.string().nullable().meta({ description: 'Updated at most once a minute.' }),
  })
  .meta({ id: 'Token' });

const createToken = tokenCreateSchema;

const auditQuery = z.strictObject({
  org: nameSchema.optional().meta({ description: 'Required unless you are an operator.' }),
  kind: z.string().max(100).optional(),
  project: z.string().max(100).optional(),
  name: z.string().max(100).optional(),
  actor: z.string().max(200).optional(),
  system: z.stringbool().optional().meta({
    description:
      "false: leave out what Kumo itself did (its controllers' and agents' status updates, actors system:…).",
  }),
  since: z.iso
    .datetime({ offset: true })
    .optional()
    .meta({ description: 'Only entries at or after this time.' }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const auditEntry = z
  .object({
    id: z.string(),
    at: z.string(),
    org: z.string().nullable(),
    actor: z.string(),
    tokenId: z.string().nullable(),
    action: z.string(),
    kind: z.string(),
    project: z.string(),
    name: z.string(),
    outcome: z.string(),
    requestId: z.string().nullable(),
    source: z.string().nullable(),
  })
  .meta({ id: 'AuditEntry' });

const whoami = z
  .object({
    principal: z.string(),
    kind: z.enum(['operator', 'user', 'service']),
    tokenId: z.string(),
    role: z.enum(TOKEN_ROLES),
    org: z.string().nullable(),
    projects: z.array(z.string()).nullable(),
    grants: z.array(
      z.object({
        org: z.string(),
        role: z.string(),
        projects: z.array(z.string()).nullable(),
        permissions: z.array(z.string()),
      }),
    ),
  })
  .meta({ id: 'WhoAmI' });

export interface AdminRouteDeps {
  tokens: TokenStore;
  memberships: MembershipStore;
  authorizer: Authorizer;
  pool: pg.Pool;
}

const problem = { content: { 'application/problem+json': { schema: problemSchema } } };

/** Tokens, the caller's identity and the audit log. */
export function registerAdminRoutes(router: KumoRouter, deps: AdminRouteDeps): void {
  const anyToken = {
    authenticated: 'each caller sees and manages only their own tokens and those of orgs they administer',
  };

  router.add({
    method: 'get',
    path: '/v1/whoami',
    tags: ['Tokens'],
    summary: 'Who this token acts for, and what it may do in each org',
    access: { authenticated: 'it only describes the caller' },
    responses: { 200: { description: 'The caller', content: { 'application/json': { schema: whoami } } } },
    handler: async (c) => {
      const p = c.get('principal')!;
      const grants = p.kind === 'operator' ? [] : await deps.authorizer.grants(p);
      return c.json({
        principal: p.id,
        kind: p.kind,
        tokenId: p.tokenId,
        role: p.role,
        org: p.org,
        projects: p.projects,
        grants: grants.map((g) => ({
          org: g.org,
          role: g.role,
          projects: g.projects,
          permissions: [...g.permissions].sort(),
        })),
      });
    },
  });

  router.add({
    method: 'post',
    path: '/v1/tokens',
    tags: ['Tokens'],
    summary: 'Create an API token; its secret is in this answer only',
    description:
      'A personal token acts for its user through their memberships, capped at its role. A service token belongs to an org (created by its owners and admins). No token can be created with a role above its creator.',
    access: anyToken,
    request: { body: { content: { 'application/json': { schema: createToken } }, required: true } },
    responses: {
      201: {
        description: 'Created; keep `token`, it is never shown again',
        content: { 'application/json': { schema: tokenInfo.extend({ token: z.string() }) } },
      },
      403: { description: 'Above your own role', ...problem },
      422: { description: 'Invalid fields', ...problem },
    },
    handler: async (c) => {
      const body = validated<z.infer<typeof createToken>>(c, 'json');
      const spec = await tokenToCreate(deps, c.get('principal')!, body);
      const expiresAt = body.expiresInDays
        ? new Date(Date.now() + body.expiresInDays * 86_400_000)
        : undefined;
      const created = await deps.tokens.create({ ...spec, ...(expiresAt ? { expiresAt } : {}) });
      await recordAudit(deps.pool, writeContext(c), {
        action: 'create-token',
        kind: 'Token',
        name: created.id,
        org: spec.org ?? null,
      });
      const info = (await deps.tokens.get(created.id))!;
      return c.json({ ...info, token: created.token }, 201);
    },
  });

  router.add({
    method: 'get',
    path: '/v1/tokens',
    tags: ['Tokens'],
    summary: 'API tokens (never their secrets): yours, and the service tokens of orgs you administer',
    access: anyToken,
    responses: {
      200: {
        description: 'Tokens, newest first',
        content: { 'application/json': { schema: z.object({ items: z.array(tokenInfo) }) } },
      },
    },
    handler: async (c) =>
      c.json({ items: await deps.tokens.list(await tokenScope(deps, c.get('principal')!)) }),
  });

  router.add({
    method: 'delete',
    path: '/v1/tokens/{id}',
    tags: ['Tokens'],
    summary: 'Revoke a token: it stops working at once',
    access: anyToken,
    request: { params: z.object({ id: z.uuid() }) },
    responses: {
      200: { description: 'Revoked', content: { 'application/json': { schema: tokenInfo } } },
      404: { description: 'No such token (or not one of yours)', ...problem },
    },
    handler: async (c) => {
      const { id } = validated<{ id: string }>(c, 'param');
      const token = await deps.tokens.get(id);
      const scope = await tokenScope(deps, c.get('principal')!);
      const revoked = token && inTokenScope(token, scope) ? await deps.tokens.revoke(id) : undefined;
      if (!revoked) throw new NotFoundError(`Token ${id} does not exist. See GET /v1/tokens.`);
      await recordAudit(deps.pool, writeContext(c), {
        action: 'revoke-token',
        kind: 'Token',
        name: id,
        org: revoked.org,
      });
      return c.json(revoked);
    },
  });

  router.add({
    method: 'get',
    path: '/v1/audit',
    tags: ['Audit'],
    summary: 'The audit log: every change and every credentials read, newest first',
    description: "Org owners and admins read their org's entries (?org=); operators read everything.",
    access: { permission: 'audit.read', in: { orgQuery: 'org' } },
    request: { query: auditQuery },
    responses: {
      200: {
        description: 'Entries',
        content: { 'application/json': { schema: z.object({ items: z.array(auditEntry) }) } },
      },
    },
    handler: async (c) => {
      const q = validated<z.infer<typeof auditQuery>>(c, 'query');
      const { org, ...rest } = q;
      return c.json({ items: await queryAudit(deps.pool, { ...rest, ...(org ? { org } : {}) }) });
    },
  });
}

/** Decides what a token request may create, enforcing "no higher than the creator". */
async function tokenToCreate(
  deps: AdminRouteDeps,
  caller: Principal,
  body: z.infer<typeof createToken>,
): Promise<NewToken> {
  const base = { name: body.name, createdBy: caller.id };
  const invalid = (field: string, message: string, hint: string) =>
    new ValidationError(`${field} ${message}. ${hint}`, [{ field, message }]);
  if (body.projects && !body.org)
    throw invalid('projects', 'needs org', 'Say which org the projects are in.');
  if (body.role === 'operator' && (body.service || body.user || body.org)) {
    throw invalid('role', 'operator is for operator tokens only', 'Pick a member role for org tokens.');
  }

  if (body.user) {
    if (caller.kind !== 'operator') throw new ForbiddenError('Only operators create tokens for other users.');
    if (!(await deps.memberships.getUser(body.user))) {
      throw invalid('user', `"${body.user}" does not exist`, 'Create the user first (POST /v1/users).');
    }
    if (body.service)
      throw invalid('service', 'cannot be combined with user', 'A token is personal or a service token.');
    await requireProjectsOf(deps.pool, body.org, body.projects);
    return {
      ...base,
      principal: `user:${body.user}`,
      role: body.role ?? 'owner',
      org: body.org ?? null,
      projects: body.projects ?? null,
    };
  }

  if (body.service) {
    if (!body.org)
      throw invalid('org', 'is required for a service token', 'Name the org the token belongs to.');
    const role = body.role;
    if (!role || role === 'operator') {
      throw invalid('role', 'is required for a service token', `Use one of ${MEMBER_ROLES.join(', ')}.`);
    }
    if (caller.kind !== 'operator') {
      await deps.authorizer.check(caller, 'tokens.manage', { org: body.org });
      const grant = (await deps.authorizer.grantIn(caller, body.org))!;
      checkWithin(ROLE_PERMISSIONS[role], grant, role);
      if (grant.projects && !(body.projects ?? []).every((p) => grant.projects!.includes(p))) {
        throw new ForbiddenError('A token cannot reach projects you cannot reach yourself.');
      }
    } else if (!(await platformResourceExists(deps.pool, 'Org', body.org))) {
      throw invalid('org', `"${body.org}" does not exist`, 'Create the org first.');
    }
    await requireProjectsOf(deps.pool, body.org, body.projects);
    return {
      ...base,
      principal: `service:${body.org}/${body.name}`,
      role,
      org: body.org,
      projects: body.projects ?? null,
    };
  }

  // A personal token of the caller, never more than the token making it.
  if (caller.kind === 'service') {
    throw new ForbiddenError(
      'A service token can create only service tokens (set "service": true and "org").',
    );
  }
  if (caller.kind === 'operator') {
    if (body.org || body.projects || (body.role && body.role !== 'operator')) {
      throw invalid(
        'role',
        'of an operator token is operator',
        'Operators act platform-wide; leave out role, org and projects.',
      );
    }
    return { ...base, principal: caller.id, role: 'operator' };
  }
  // Without a role the token inherits the caller's cap; a role asked for must be within it and
  // within what the caller's memberships allow (in the token's org, or in any org).
  const role = body.role ?? caller.role;
  if (
    role === 'operator' ||
    role === 'agent' ||
    caller.role === 'operator' ||
    caller.role === 'agent' ||
    !isWithin(ROLE_PERMISSIONS[role], ROLE_PERMISSIONS[caller.role])
  ) {
    throw new ForbiddenError(
      `A token cannot have a role above the token that creates it (yours is ${caller.role}); choose ${roleChoices(caller.role)}.`,
    );
  }
  if (body.role) {
    const grants = (await deps.authorizer.grants(caller)).filter((g) => !body.org || g.org === body.org);
    const most = new Set(grants.flatMap((g) => [...g.permissions]));
    if (!isWithin(ROLE_PERMISSIONS[role as MemberRole], most)) {
      throw new ForbiddenError(
        `A token cannot have a role above your own: ${body.role} can do more than your memberships allow (${grants.map((g) => `${g.role} in ${g.org}`).join(', ') || 'none'}).`,
      );
    }
  }
  if (caller.org && body.org !== undefined && body.org !== caller.org) {
    throw new ForbiddenError(`Your token is limited to org "${caller.org}"; so is every token it creates.`);
  }
  const org = body.org ?? caller.org;
  if (caller.projects && !(body.projects ?? []).length) {
    throw new ForbiddenError(
      `Your token is limited to projects ${caller.projects.join(', ')}; name some of them.`,
    );
  }
  if (caller.projects && !(body.projects ?? []).every((p) => caller.projects!.includes(p))) {
    throw new ForbiddenError('A token cannot reach projects its creator cannot reach.');
  }
  const projects = body.projects ?? null;
  if (org && !(await deps.authorizer.grantIn(caller, org))) {
    throw invalid('org', `"${org}" is not an org you are a member of`, 'See GET /v1/whoami.');
  }
  await requireProjectsOf(deps.pool, org ?? undefined, projects ?? undefined);
  return { ...base, principal: caller.id, role, org: org ?? null, projects };
}

function checkWithin(wanted: ReadonlySet<keyof typeof PERMISSIONS>, grant: Grant, role: string): void {
  if (!isWithin(wanted, grant.permissions)) {
    throw new ForbiddenError(
      `A token cannot have a role above its creator's: ${role} can do more than your ${grant.role} in org "${grant.org}".`,
    );
  }
}

function roleChoices(role: string): string {
  const mine = ROLE_PERMISSIONS[role as keyof typeof ROLE_PERMISSIONS];
  return MEMBER_ROLES.filter((r) => mine && isWithin(ROLE_PERMISSIONS[r], mine)).join(', ') || 'none';
}

/**
 * Which tokens a caller sees and may revoke: their own, and the service tokens of orgs where they
 * may manage tokens; operators all (undefined).
 */
async function tokenScope(deps: AdminRouteDeps, p: Principal): Promise<TokenScope | undefined> {
  if (p.kind === 'operator') return undefined;
  const grants = await deps.authorizer.grants(p);
  const managed = grants.filter((g) => !g.projects && g.permissions.has('tokens.manage')).map((g) => g.org);
  return { principals: [p.id], serviceOrgs: managed };
}
