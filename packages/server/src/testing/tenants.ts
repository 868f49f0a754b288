import { afterAll, beforeAll, inject } from 'vitest';
import { type TestKumo, startTestKumo } from './test-kumo.js';

/** The members of org "acme" the tenancy tests act as, by user name, with their role. */
export const ACME_MEMBERS = {
  'acme-owner': { role: 'owner' },
  'acme-admin': { role: 'admin' },
  'acme-dev': { role: 'developer' },
  'acme-viewer': { role: 'viewer' },
  'acme-billing': { role: 'billing' },
  /** A developer whose membership is narrowed to project acme-web. */
  'acme-narrow': { role: 'developer', projects: ['acme-web'] },
} as const;

export type Actor = keyof typeof ACME_MEMBERS | 'globex-owner' | 'operator' | 'anonymous';

/**
 * Two customers on one Kumo: org acme (projects acme-web, acme-api) and org globex (project
 * globex-web), each with a database on target "parked" and a backup and a DatabaseUser of it ("<database>-backup", "<database>-user") (a target without an agent, so databases
 * stay Pending and nothing is provisioned), a member of every role in acme, an owner of globex,
 * and a personal token for each.
 */
export async function createTenants(t: TestKumo) {
  const op = async (path: string, method: string, json: unknown) => {
    const res = await t.request(path, { method, json });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as any;
  };
  await op('/v1/targets', 'POST', { metadata: { name: 'parked' }, spec: { driver: 'kubernetes' } });
  for (const org of ['acme', 'globex']) await op('/v1/orgs', 'POST', { metadata: { name: org }, spec: {} });
  for (const [project, org] of [
    ['acme-web', 'acme'],
    ['acme-api', 'acme'],
    ['globex-web', 'globex'],
  ] as const) {
    await op('/v1/projects', 'POST', { metadata: { name: project }, spec: { org } });
  }
  for (const [project, name] of [
    ['acme-web', 'orders'],
    ['acme-api', 'ledger'],
    ['globex-web', 'globex-secrets'],
  ] as const) {
    await op(`/v1/projects/${project}/databases`, 'POST', { metadata: { name }, spec: parkedDatabase() });
    // Stays Pending: no agent serves the parked target.
    await op(`/v1/projects/${project}/backups`, 'POST', {
      metadata: { name: `${name}-backup` },
      spec: { database: name },
    });
    // Stays Pending too.
    await op(`/v1/projects/${project}/databaseusers`, 'POST', {
      metadata: { name: `${name}-user` },
      spec: { database: name },
    });
  }
  const tokens: Record<string, string> = { operator: t.token };
  const members: Array<[string, string, { role: string; projects?: readonly string[] }]> = [
    ...Object.entries(ACME_MEMBERS).map(([user, m]) => ['acme', user, m] as [string, string, typeof m]),
    ['globex', 'globex-owner', { role: 'owner' }],
  ];
  for (const [org, user, membership] of members) {
    await op('/v1/users', 'POST', { name: user });
    await op(`/v1/orgs/${org}/members/${user}`, 'PUT', membership);
    tokens[user] = (await op('/v1/tokens', 'POST', { name: `${user}-laptop`, user })).token;
  }

  /**
   * A request as one of the actors. Anonymous requests send an empty Authorization header: TestKumo
   * adds the admin token only when there is none, and an empty one carries no token.
   */
  const as = (actor: Actor | string, path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', actor === 'anonymous' ? '' : `Bearer ${tokens[actor] ?? actor}`);
    return t.request(path, { ...init, headers });
  };
  return { tokens, as };
}

/** The spec of a database on the agentless target: accepted, never provisioned. */
export function parkedDatabase(storageGB = 10) {
  return { engine: 'postgres', version: '15', plan: 'small', storageGB, target: 'parked' };
}

export type Tenants = Awaited<ReturnType<typeof createTenants>>;

/** Starts a Kumo with the tenants for the calling test file (before all its tests) and stops it after. */
export function useTenants(): { readonly kumo: TestKumo; readonly tenants: Tenants } {
  const state: { kumo?: TestKumo; tenants?: Tenants } = {};
  beforeAll(async () => {
    state.kumo = await startTestKumo(inject('pg'));
    state.tenants = await createTenants(state.kumo);
  }, 60_000);
  afterAll(() => state.kumo?.stop());
  return {
    get kumo() {
      return state.kumo!;
    },
    get tenants() {
      return state.tenants!;
    },
  };
}

/** Org acme with project shop and a developer "dev" of it; resolves with dev's token. */
export async function createDeveloper(t: TestKumo): Promise<string> {
  await t.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'acme' }, spec: {} } });
  await t.request('/v1/projects', {
    method: 'POST',
    json: { metadata: { name: 'shop' }, spec: { org: 'acme' } },
  });
  await t.request('/v1/users', { method: 'POST', json: { name: 'dev' } });
  await t.request('/v1/orgs/acme/members/dev', { method: 'PUT', json: { role: 'developer' } });
  const made = await t.request('/v1/tokens', { method: 'POST', json: { name: 'dev', user: 'dev' } });
  return ((await made.json()) as { token: string }).token;
}
