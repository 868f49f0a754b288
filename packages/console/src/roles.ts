import type { WhoAmI } from './api.js';

/** The member roles, most rights first (the API's docs/iam.md table). */
export const ROLES = ['owner', 'admin', 'developer', 'viewer', 'billing'];

/**
 * Whether the caller's role allows permission in org — in all of it, or with `project` in that
 * project (a membership narrowed to some projects has its permissions there only). Operators may
 * do everything. The API decides; this only keeps the console from offering what it would refuse.
 */
export function may(me: WhoAmI | undefined, org: string, permission: string, project?: string): boolean {
  if (me?.kind === 'operator') return true;
  const grant = me?.grants.find((g) => g.org === org);
  if (!grant?.permissions.includes(permission)) return false;
  return grant.projects === null || (project !== undefined && grant.projects.includes(project));
}
