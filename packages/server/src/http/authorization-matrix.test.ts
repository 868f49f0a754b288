import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ROLE_PERMISSIONS, type Permission } from '../auth/roles.js';
import { ACME_MEMBERS, type Actor, useTenants } from '../testing/tenants.js';
import { waitFor } from '../testing/wait.js';
import type { Access } from './access.js';

/**
 * Every route of the served API × every actor × the actor's own org, another project of it, and a
 * foreign org: the status each request gets must be the one the route's declared rule and the
 * permission table predict, and no answer may carry a foreign org's data. Built from the route
 * table, so a new route is covered (or fails here) without anyone editing this file.
 */

const env = useTenants();

interface Side {
  label: string;
  org: string;
  project: string;
  database: string;
}
const SIDES: Side[] = [
  { label: 'own project', org: 'acme', project: 'acme-web', database: 'orders' },
  { label: 'other project of own org', org: 'acme', project: 'acme-api', database: 'ledger' },
  { label: 'foreign org', org: 'globex', project: 'globex-web', database: 'globex-secrets' },
];
const ACTORS: Actor[] = ['operator', ...(Object.keys(ACME_MEMBERS) as Actor[]), 'anonymous'];

type Outcome = 'allowed' | 401 | 403 | 404;

/** What the permission table says should happen, independently of how the server decides it. */
function expected(access: Access, method: string, path: string, actor: Actor, side: Side): Outcome {
  if ('public' in access) return 'allowed';
  if (actor === 'anonymous') return 401;
  // Answering an invitation made out to someone else (a throwaway name): as if it did not exist;
  // operators are not invited, they set memberships (told so).
  if (/^\/v1\/invitations\/\{id\}\/(accept|decline)$/.test(path)) return actor === 'operator' ? 403 : 404;
  if (actor === 'operator') return 'allowed';
  const member = ACME_MEMBERS[actor as keyof typeof ACME_MEMBERS];
  if ('operator' in access) return 403;
  // The agent API: a target's agent token (agent-routes.test.ts) or an operator; no member.
  if ('agent' in access) return 403;
  if ('authenticated' in access) {
    // Revoking a token that is not yours: as if it did not exist.
    if (method === 'DELETE' && path === '/v1/tokens/{id}') {
      return side.org === 'acme' && !('projects' in member) && allows(member.role, 'tokens.manage')
        ? 'allowed'
        : 404;
    }
    return 'allowed';
  }
  if (!('permission' in access))
    throw new Error(`Unknown access rule ${JSON.stringify(access)}: teach the matrix.`);
  if (side.org !== 'acme') return 404;
  const narrowed = 'projects' in member ? (member.projects as readonly string[]) : undefined;
  const inProject = 'projectParam' in access.in;
  if (narrowed && inProject && !narrowed.includes(side.project)) return 404;
  if (narrowed && !inProject && access.permission !== 'org.read') return 403;
  return allows(member.role, access.permission) ? 'allowed' : 403;
}

function allows(role: string, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role as keyof typeof ROLE_PERMISSIONS].has(permission);
}

let fresh = 0;
/** Values for a route's path parameters on one side; throwaway things for routes that destroy. */
async function paramsFor(path: string, side: Side): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const [, param] of path.matchAll(/\{(\w+)\}/g)) {
    const n = ++fresh;
    if (param === 'org') values.org = side.org;
    else if (param === 'project') values.project = side.project;
    else if (param === 'name' && path.startsWith('/v1/orgs/')) values.name = side.org;
    else if (param === 'name' && path.startsWith('/v1/projects/{name}')) values.name = side.project;
    else if (param === 'name' && path.startsWith('/v1/projects/{project}/databases/'))
      values.name = side.database;
    else if (param === 'name' && path.startsWith('/v1/projects/{project}/backups/'))
      values.name = `${side.database}-backup`;
    else if (param === 'name' && path.startsWith('/v1/projects/{project}/databaseusers/'))
      values.name = `${side.database}-user`;
    else if (param === 'name' && path.startsWith('/v1/projects/{project}/webhooks/'))
      values.name = await webhookOf(side);
    else if (param === 'name' && path.startsWith('/v1/targets/')) values.name = 'parked';
    else if (param === 'target') values.target = 'local';
    else if (param === 'name' && path.startsWith('/v1/users/')) values.name = await throwawayUser(`u${n}`);
    else if (param === 'user') {
      values.user = await throwawayUser(`m${n}`);
      await operator(`/v1/orgs/${side.org}/members/${values.user}`, 'PUT', { role: 'viewer' });
    } else if (param === 'id' && path.includes('/deliveries/')) {
      values.id = await deliveryOf(side);
    } else if (param === 'id' && path.includes('/invitations')) {
      const invitation = await operator(`/v1/orgs/${side.org}/invitations`, 'POST', {
        user: `invitee-${n}`,
        role: 'viewer',
      });
      values.id = invitation.id;
    } else if (param === 'number') {
      values.number = await invoiceOf(side.org, n);
    } else if (param === 'id') {
      values.id = (
        await operator('/v1/tokens', 'POST', { name: `t${n}`, service: true, org: side.org, role: 'viewer' })
      ).id;
    } else {
      throw new Error(`The matrix does not know how to fill {${param}} in ${path}; teach paramsFor.`);
    }
  }
  return values;
}

const webhooks = new Map<string, Promise<string>>();
/** The side's webhook ("<database>-hook", to a name that never resolves), made on first use, with a secret. */
function webhookOf(side: Side): Promise<string> {
  const name = `${side.database}-hook`;
  if (!webhooks.has(name)) {
    webhooks.set(
      name,
      (async () => {
        await operator(`/v1/projects/${side.project}/webhooks`, 'POST', {
          metadata: { name },
          spec: { url: 'http://receiver.invalid/' },
        });
        await operator(`/v1/projects/${side.project}/webhooks/${name}/secret/rotate`, 'POST', undefined);
        return name;
      })(),
    );
  }
  return webhooks.get(name)!;
}

/** A delivery of the side's webhook (its status change once it has a secret is one). */
async function deliveryOf(side: Side): Promise<string> {
  const name = await webhookOf(side);
  return waitFor(async () => {
    const res = await env.kumo.request(`/v1/projects/${side.project}/webhooks/${name}/deliveries`);
    return ((await res.json()) as { items: Array<{ id: string }> }).items[0]?.id;
  }, `a delivery of webhook ${name}`);
}

/** An invoice of org, issued straight into the store (closing a real month would take a month). */
async function invoiceOf(org: string, n: number): Promise<string> {
  const number = `2099-${String(n).padStart(6, '0')}`;
  const period = {
    month: '2099-01',
    timeZone: 'UTC',
    from: '2099-01-01T00:00:00.000Z',
    to: '2099-02-01T00:00:00.000Z',
  };
  const doc = {
    number,
    kind: 'invoice',
    org,
    period,
    issuedAt: period.to,
    currency: 'EUR',
    total: 0,
    lines: [],
  };
  const store = new pg.Client({ connectionString: env.kumo.databaseUrl });
  await store.connect();
  try {
    await store.query(
      `INSERT INTO invoices (number, kind, org, month, time_zone, period_from, period_to, currency, total, issued_by, document)
       VALUES ($1, 'invoice', $2, $3, 'UTC', $4, $5, 'EUR', 0, 'test', $6)`,
      [number, org, `2099-${String((n % 12) + 1).padStart(2, '0')}-${n}`, period.from, period.to, doc],
    );
  } finally {
    await store.end();
  }
  return number;
}

async function throwawayUser(name: string): Promise<string> {
  await operator('/v1/users', 'POST', { name });
  return name;
}

async function operator(path: string, method: string, json: unknown): Promise<any> {
  const res = await env.kumo.request(path, { method, json });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

describe('the authorization matrix', () => {
  it('answers every route, actor and org as the permission table says, and leaks nothing across orgs', async () => {
    const table = env.kumo.kumo.routeTable;
    expect(table.length).toBeGreaterThan(40);
    const mismatches: string[] = [];
    const leaks: string[] = [];
    let requests = 0;
    for (const route of table) {
      for (const side of SIDES) {
        for (const actor of ACTORS) {
          const want = expected(route.access, route.method, route.path, actor, side);
          const params = await paramsFor(route.path, side);
          let url = route.path.replace(/\{(\w+)\}/g, (_, p: string) => params[p]!);
          const access = route.access;
          if ('permission' in access && 'orgQuery' in access.in) url += `?${access.in.orgQuery}=${side.org}`;
          const init: RequestInit & { json?: unknown } = { method: route.method };
          if (route.method === 'DELETE') init.headers = { 'if-match': '"0"' };
          if (['POST', 'PUT', 'PATCH'].includes(route.method) && !url.endsWith('/rotate')) {
            // Valid enough to reach authorization; only the project create is complete (and creates).
            init.json = { metadata: { name: `made-${++fresh}` }, spec: { org: side.org } };
          }
          const res = await env.tenants.as(actor, url, init);
          requests++;
          const text = await res.text();
          const got = res.status;
          // Past authorization, a database's log on the agentless target "parked" is honestly unreachable.
          const unreachable = got === 503 && text.includes('Target unreachable');
          const ok =
            want === 'allowed' ? (got < 500 || unreachable) && ![401, 403, 404].includes(got) : got === want;
          if (!ok)
            mismatches.push(
              `${route.method} ${route.path} as ${actor} on ${side.label}: ${got}, want ${want} — ${text.slice(0, 200)}`,
            );
          const sent = url + JSON.stringify(init.json ?? '');
          if (
            actor !== 'operator' &&
            side.org === 'acme' &&
            text.includes('globex') &&
            !sent.includes('globex')
          ) {
            leaks.push(`${route.method} ${url} as ${actor}: ${text.slice(0, 200)}`);
          }
        }
      }
    }
    console.log(
      `authorization matrix: ${table.length} routes × ${ACTORS.length} actors × ${SIDES.length} sides = ${requests} requests`,
    );
    expect(mismatches).toEqual([]);
    expect(leaks).toEqual([]);
  }, 300_000);

  it('fails for a rule it does not know, so a new kind of rule cannot slip through untested', () => {
    const side = SIDES[0]!;
    expect(() => expected({ bogus: true } as never, 'GET', '/v1/x', 'acme-dev', side)).toThrow();
  });
});
