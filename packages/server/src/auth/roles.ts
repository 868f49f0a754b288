import { MEMBER_ROLES, type MemberRole } from '@kumo/api';

/**
 * The permission table: what each member role may do in its organisation. This table is the whole
 * of customer authorization; routes name one permission each (http/access.ts), and docs/iam.md
 * shows the same table (a test keeps it in step).
 */
export const PERMISSIONS = {
  'org.read': 'See the organisation',
  'members.read': "See the organisation's members and their roles",
  'org.update': "Change the organisation's display name and description",
  'projects.read': 'List and read projects',
  'projects.create': 'Create projects',
  'projects.update': 'Change projects',
  'projects.delete': 'Delete projects (and everything in them)',
  'resources.read': 'Read databases and their events',
  'resources.write': 'Create, change, stop, start and delete databases',
  'credentials.read': 'Read and rotate database passwords',
  'logs.read': 'Read database server logs',
  'webhooks.read': 'Read webhooks and their delivery logs',
  'webhooks.write': 'Create, change and delete webhooks, rotate their secrets, redeliver',
  'usage.read': 'See quotas and usage',
  'costs.read': 'See cost to date and forecasts',
  'invoices.read': 'See invoices',
  'quotas.manage': "Set project quotas (within the organisation's quota)",
  'members.manage': 'Invite, change and remove members below owner',
  'owners.manage': 'Make and remove owners',
  'tokens.manage': 'Create, list and revoke service tokens of the organisation',
  'audit.read': "Read the organisation's audit log",
} as const;

export type Permission = keyof typeof PERMISSIONS;

export { MEMBER_ROLES, type MemberRole };

const VIEWER: Permission[] = ['org.read', 'members.read', 'projects.read', 'resources.read', 'usage.read'];
const DEVELOPER: Permission[] = [
  ...VIEWER,
  'resources.write',
  'credentials.read',
  'logs.read',
  'webhooks.read',
  'webhooks.write',
];
const ADMIN: Permission[] = [
  ...DEVELOPER,
  'org.update',
  'projects.create',
  'projects.update',
  'projects.delete',
  'costs.read',
  'invoices.read',
  'quotas.manage',
  'members.manage',
  'tokens.manage',
  'audit.read',
];

export const ROLE_PERMISSIONS: Readonly<Record<MemberRole, ReadonlySet<Permission>>> = {
  owner: new Set([...ADMIN, 'owners.manage']),
  admin: new Set(ADMIN),
  developer: new Set(DEVELOPER),
  viewer: new Set(VIEWER),
  billing: new Set([
    'org.read',
    'members.read',
    'projects.read',
    'usage.read',
    'costs.read',
    'invoices.read',
  ]),
};

/**
 * What a membership narrowed to some projects may still do at the level of the whole organisation:
 * see it exists (not its members, tokens or audit log). Everything else it may do only inside its
 * projects.
 */
export const NARROWED_ORG_PERMISSIONS: ReadonlySet<Permission> = new Set(['org.read']);

/** True when every permission of `inner` is also in `outer`: "a role no higher than". */
export function isWithin(inner: ReadonlySet<Permission>, outer: ReadonlySet<Permission>): boolean {
  for (const p of inner) if (!outer.has(p)) return false;
  return true;
}

export function intersect(a: ReadonlySet<Permission>, b: ReadonlySet<Permission>): Set<Permission> {
  return new Set([...a].filter((p) => b.has(p)));
}

/** The permission table as Markdown, for docs/iam.md. */
export function permissionTableMarkdown(): string {
  const header = `| Permission | What it allows | ${MEMBER_ROLES.join(' | ')} |`;
  const rule = `|---|---|${MEMBER_ROLES.map(() => ':-:').join('|')}|`;
  const rows = (Object.keys(PERMISSIONS) as Permission[]).map(
    (p) =>
      `| \`${p}\` | ${PERMISSIONS[p]} | ${MEMBER_ROLES.map((r) => (ROLE_PERMISSIONS[r].has(p) ? '✓' : '')).join(' | ')} |`,
  );
  return [header, rule, ...rows].join('\n');
}
