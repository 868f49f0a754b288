import type pg from 'pg';
import { ForbiddenError, NotFoundError } from '../errors.js';
import type { ListScope } from '../store/resource-store.js';
import { orgOfProject } from '../store/resource-rows.js';
import type { MembershipStore } from './membership-store.js';
import {
  NARROWED_ORG_PERMISSIONS,
  PERMISSIONS,
  type Permission,
  ROLE_PERMISSIONS,
  intersect,
  isWithin,
} from './roles.js';
import type { Principal } from './token-store.js';

/** What a principal may do in one org: the permissions, and the projects they are narrowed to (or null). */
export interface Grant {
  org: string;
  /** For messages, e.g. "developer" or "admin (token: viewer)". */
  role: string;
  permissions: ReadonlySet<Permission>;
  projects: string[] | null;
}

/**
 * Decides what a principal may do. Operators may do everything. Users act through their
 * memberships, capped by their token's role and narrowing; service tokens act in their one org.
 * Anything in an org the principal has no grant in is answered as not found, so names never leak.
 */
export class Authorizer {
  constructor(
    private readonly pool: pg.Pool,
    private readonly memberships: MembershipStore,
  ) {}

  orgOfProject(project: string): Promise<string | undefined> {
    return orgOfProject(this.pool, project);
  }

  async grantIn(principal: Principal, org: string): Promise<Grant | undefined> {
    if (principal.kind === 'operator') {
      return {
        org,
        role: 'operator',
        permissions: new Set(Object.keys(PERMISSIONS) as Permission[]),
        projects: null,
      };
    }
    if (principal.org !== null && principal.org !== org) return undefined;
    if (principal.role === 'agent') return undefined; // the agent API only
    if (principal.kind === 'service') {
      if (principal.role === 'operator') return undefined;
      return {
        org,
        role: principal.role,
        permissions: ROLE_PERMISSIONS[principal.role],
        projects: principal.projects,
      };
    }
    const membership = await this.memberships.membership(org, userName(principal));
    if (!membership) return undefined;
    return combine(membership, principal);
  }

  /**
   * Checks that the principal has `permission` where the request acts. Throws NotFoundError for orgs and projects the principal has no grant in,
   * and ForbiddenError when they do but their role does not allow it.
   */
  async check(
    principal: Principal,
    permission: Permission,
    where: { org: string } | { project: string },
  ): Promise<void> {
    const project = 'project' in where ? where.project : undefined;
    // Operators may do everything: no lookup on their requests.
    if (principal.kind === 'operator') return;
    const org = 'org' in where ? where.org : await this.orgOfProject(where.project);
    const hidden = () =>
      new NotFoundError(project ? `Project "${project}" does not exist.` : `Org "${org}" does not exist.`);
    if (!org) throw hidden();
    const grant = await this.grantIn(principal, org);
    if (!grant) throw hidden();
    if (project && grant.projects && !grant.projects.includes(project)) throw hidden();
    const allowed =
      project || !grant.projects ? grant.permissions : intersect(grant.permissions, NARROWED_ORG_PERMISSIONS);
    if (!allowed.has(permission)) {
      const narrowed =
        !project && grant.projects
          ? ` (your membership is limited to projects ${grant.projects.join(', ')})`
          : '';
      throw new ForbiddenError(
        `Your role in org "${org}" is ${grant.role}${narrowed}, which does not allow ${permission}: ${PERMISSIONS[permission].toLowerCase()}. Ask an owner or admin of the org.`,
      );
    }
  }

  /** Every org the principal has some grant in. */
  async grants(principal: Principal): Promise<Grant[]> {
    if (principal.kind === 'service') {
      const grant = principal.org ? await this.grantIn(principal, principal.org) : undefined;
      return grant ? [grant] : [];
    }
    const memberships = await this.memberships.membershipsOf(userName(principal));
    return memberships
      .filter((m) => principal.org === null || m.org === principal.org)
      .map((m) => combine(m, principal))
      .filter((g): g is Grant => g !== undefined);
  }

  /** What lists of orgs and projects show this principal; undefined for operators (everything). */
  async listScope(principal: Principal, kind: 'Org' | 'Project'): Promise<ListScope | undefined> {
    if (principal.kind === 'operator') return undefined;
    const grants = await this.grants(principal);
    if (kind === 'Org') return { names: grants.map((g) => g.org) };
    const readable = grants.filter((g) => g.permissions.has('projects.read'));
    return {
      orgs: readable.filter((g) => !g.projects).map((g) => g.org),
      orgProjects: readable.flatMap((g) => (g.projects ?? []).map((p) => `${g.org}/${p}`)),
    };
  }
}

export function userName(principal: Principal): string {
  return principal.id.slice('user:'.length);
}

function combine(
  membership: { org: string; role: keyof typeof ROLE_PERMISSIONS; projects: string[] | null },
  principal: Principal,
): Grant | undefined {
  const own = ROLE_PERMISSIONS[membership.role];
  if (principal.role === 'agent') return undefined;
  const cap = principal.role === 'operator' ? own : ROLE_PERMISSIONS[principal.role];
  const capped = !isWithin(own, cap);
  const permissions = capped ? intersect(own, cap) : own;
  let projects = membership.projects;
  if (principal.projects) {
    projects = projects ? projects.filter((p) => principal.projects!.includes(p)) : principal.projects;
    if (projects.length === 0) return undefined;
  }
  return {
    org: membership.org,
    role: capped ? `${membership.role} (token limited to ${principal.role})` : membership.role,
    permissions,
    projects,
  };
}
