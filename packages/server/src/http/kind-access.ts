import type { KindDefinition } from '@kumo/api';
import type { Permission } from '../auth/roles.js';
import type { Access } from './access.js';

/** Who may do what with the resources of a kind, route by route. */
export interface KindAccess {
  list: Access;
  /** A list open to any token shows each caller only the orgs or projects they may see. */
  listScope?: 'Org' | 'Project';
  create: Access;
  read: Access;
  update: Access;
  delete: Access;
  /** Status is written by agents and controllers, never by customers. */
  writeStatus: Access;
}

const operator = { operator: true } as const;

const PLATFORM_KINDS: Readonly<Record<string, KindAccess>> = {
  Org: {
    list: { authenticated: 'shows the orgs the caller is a member of' },
    listScope: 'Org',
    create: operator,
    read: { permission: 'org.read', in: { orgParam: 'name' } },
    update: { permission: 'org.update', in: { orgParam: 'name' } },
    delete: operator,
    writeStatus: operator,
  },
  Project: {
    list: { authenticated: 'shows the projects the caller may read' },
    listScope: 'Project',
    create: { permission: 'projects.create', in: { orgBody: 'spec.org' } },
    read: { permission: 'projects.read', in: { projectParam: 'name' } },
    update: { permission: 'projects.update', in: { projectParam: 'name' } },
    delete: { permission: 'projects.delete', in: { projectParam: 'name' } },
    writeStatus: operator,
  },
  Target: {
    list: { authenticated: 'targets are where databases run; every customer may choose one' },
    create: operator,
    read: { authenticated: 'targets are where databases run; every customer may choose one' },
    update: operator,
    delete: operator,
    writeStatus: operator,
  },
};

/** Project-scoped kinds with permissions of their own (the rest: resources.read / resources.write). */
const PROJECT_KIND_PERMISSIONS: Readonly<Record<string, { read: Permission; write: Permission }>> = {
  Webhook: { read: 'webhooks.read', write: 'webhooks.write' },
};

/** The access rules of a kind. Project-scoped kinds are governed by resources.read / resources.write unless listed above. */
export function kindAccess(def: KindDefinition): KindAccess {
  if (def.scope === 'platform') {
    const rules = PLATFORM_KINDS[def.kind];
    if (!rules)
      throw new Error(`No access rules for platform kind ${def.kind}: add them to http/kind-access.ts.`);
    return rules;
  }
  const own = PROJECT_KIND_PERMISSIONS[def.kind];
  const read = { permission: own?.read ?? 'resources.read', in: { projectParam: 'project' } } as const;
  const write = { permission: own?.write ?? 'resources.write', in: { projectParam: 'project' } } as const;
  return { list: read, create: write, read, update: write, delete: write, writeStatus: operator };
}
