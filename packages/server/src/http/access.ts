import type { MiddlewareHandler } from 'hono';
import type { Authorizer } from '../auth/authorizer.js';
import type { Permission } from '../auth/roles.js';
import { ForbiddenError, MalformedRequestError, UnauthenticatedError, ValidationError } from '../errors.js';
import type { AppEnv } from './router.js';

/** Where a route finds the org it acts in. */
export type OrgFrom =
  | { orgParam: string }
  | { projectParam: string }
  | { orgQuery: string }
  /** A dotted path into the JSON body, e.g. "spec.org" (creating a project). */
  | { orgBody: string };

/**
 * Who may call a route, declared next to the route itself (KumoRouter.add requires it):
 * - `public`: anyone, no token (health checks, the OpenAPI document);
 * - `authenticated`: any valid token; the text says why, and the handler shows each caller only
 *   their own things (lists of orgs and projects, their tokens);
 * - `operator`: platform operators only (orgs, targets, users, org quotas, status writes);
 * - `permission`: a member permission (auth/roles.ts) in the org the request acts in;
 * - `agent`: the agent of the target named by the path parameter (its agent token), or an operator.
 *
 * An agent token is good for its own target's agent routes and nothing else.
 */
export type Access =
  | { public: true }
  | { authenticated: string }
  | { operator: true }
  | { permission: Permission; in: OrgFrom }
  | { agent: { targetParam: string } };

/** The middleware that enforces a route's Access before anything else of the route runs. */
export function requireAccess(access: Access, authorizer: Authorizer): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await decide(c, access, authorizer);
    c.set('recheckAccess', async () => {
      const now = await c.get('reauthenticate')?.();
      if (!now && !('public' in access)) {
        throw new UnauthenticatedError('The token was revoked or expired while this stream was open.');
      }
      c.set('principal', now);
      await decide(c, access, authorizer);
    });
    return next();
  };
}

async function decide(c: Ctx, access: Access, authorizer: Authorizer): Promise<void> {
  if ('public' in access) return;
  const principal = c.get('principal');
  if (!principal) {
    throw new UnauthenticatedError(
      'This route needs a bearer token: send "Authorization: Bearer <token>". `kumo up` prints the admin token when it creates it, and keeps it in <data-dir>/admin-token.',
    );
  }
  if ('agent' in access) {
    const target = c.req.param(access.agent.targetParam);
    if (principal.kind === 'operator' || (principal.kind === 'agent' && principal.target === target)) return;
    throw new ForbiddenError(
      principal.kind === 'agent'
        ? `This agent token acts for target ${principal.target} only, not ${target}.`
        : 'Only the agent of this target (its agent token) or an operator may do this.',
    );
  }
  if (principal.kind === 'agent') {
    throw new ForbiddenError(
      'An agent token may call only the agent API of its target (/v1/agent/…). Use a user or operator token.',
    );
  }
  if ('authenticated' in access) return;
  if ('operator' in access) {
    if (principal.kind !== 'operator') {
      throw new ForbiddenError('Only platform operators may do this. Ask the operator of this Kumo.');
    }
    return;
  }
  const where = await locate(c, access.in, principal.kind === 'operator');
  if (where) await authorizer.check(principal, access.permission, where);
}

type Ctx = Parameters<MiddlewareHandler<AppEnv>>[0];

async function locate(
  c: Ctx,
  from: OrgFrom,
  operator: boolean,
): Promise<{ org: string } | { project: string } | undefined> {
  if ('orgParam' in from) return { org: c.req.param(from.orgParam) ?? '' };
  if ('projectParam' in from) return { project: c.req.param(from.projectParam) ?? '' };
  if ('orgQuery' in from) {
    const org = c.req.query(from.orgQuery);
    if (org) return { org };
    if (operator) return undefined;
    throw new ValidationError(`Say which org: add ?${from.orgQuery}=<your org>.`, [
      { field: `query.${from.orgQuery}`, message: 'required (only operators may leave it out)' },
    ]);
  }
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new MalformedRequestError('The request body is not valid JSON. Check quoting and commas.');
  }
  let value: unknown = body;
  for (const part of from.orgBody.split('.')) {
    value =
      value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
  }
  if (typeof value === 'string' && value !== '') return { org: value };
  if (operator) return undefined;
  throw new ValidationError(`${from.orgBody} is required: the org it belongs to.`, [
    { field: from.orgBody, message: 'required: the name of an org you are a member of' },
  ]);
}
