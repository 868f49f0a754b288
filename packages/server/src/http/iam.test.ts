import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { readSse } from '../testing/sse-client.js';
import { parkedDatabase, useTenants } from '../testing/tenants.js';
import { waitFor } from '../testing/wait.js';

const env = useTenants();

const as = (...args: Parameters<typeof env.tenants.as>) => env.tenants.as(...args);
const body = async (res: Response | Promise<Response>): Promise<any> => (await res).json();
const names = (list: any) => list.items.map((r: any) => r.metadata?.name ?? r.name).sort();

describe('tenancy', () => {
  it('shows each member only their own org and its projects', async () => {
    expect(names(await body(as('acme-viewer', '/v1/orgs')))).toEqual(['acme']);
    expect(names(await body(as('globex-owner', '/v1/orgs')))).toEqual(['globex']);
    expect(names(await body(as('acme-dev', '/v1/projects')))).toEqual(['acme-api', 'acme-web']);
    expect(names(await body(as('acme-narrow', '/v1/projects')))).toEqual(['acme-web']);
    expect(names(await body(as('operator', '/v1/orgs')))).toEqual(['acme', 'globex']);
  });

  it("answers another org's resources exactly as if they did not exist", async () => {
    for (const [foreign, missing] of [
      ['/v1/orgs/globex', '/v1/orgs/nosuch'],
      ['/v1/projects/globex-web', '/v1/projects/nosuch'],
      ['/v1/projects/globex-web/databases/globex-secrets', '/v1/projects/nosuch/databases/globex-secrets'],
      [
        '/v1/projects/globex-web/databases/globex-secrets/credentials',
        '/v1/projects/nosuch/databases/x/credentials',
      ],
      ['/v1/orgs/globex/members', '/v1/orgs/nosuch/members'],
    ]) {
      const [a, b] = [await as('acme-owner', foreign!), await as('acme-owner', missing!)];
      expect([foreign, a.status]).toEqual([foreign, 404]);
      expect(b.status).toBe(404);
      const [pa, pb] = [(await a.json()) as any, (await b.json()) as any];
      expect(pa.detail.replace(/globex-web|globex/g, 'X')).toBe(pb.detail.replace(/nosuch/g, 'X'));
    }
    const del = await as('acme-owner', '/v1/projects/globex-web/databases/globex-secrets', {
      method: 'DELETE',
    });
    expect(del.status).toBe(404);
    const still = await body(as('operator', '/v1/projects/globex-web/databases/globex-secrets'));
    expect(still.metadata.deletionTimestamp).toBeNull();
  });

  it('lets each role do what the permission table says, and tells the others why not', async () => {
    const create = (actor: string, name: string) =>
      as(actor, '/v1/projects/acme-web/databases', {
        method: 'POST',
        json: { metadata: { name }, spec: parkedDatabase(1) },
      });
    expect((await create('acme-dev', 'dev-made')).status).toBe(201);
    const denied = await create('acme-viewer', 'viewer-made');
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as any).detail).toMatch(/viewer.*resources\.write/);
    expect((await create('acme-billing', 'billing-made')).status).toBe(403);

    const creds = '/v1/projects/acme-web/databases/orders/credentials';
    expect((await as('acme-dev', creds)).status).toBe(200);
    expect((await as('acme-viewer', creds)).status).toBe(403);
    expect((await as('acme-viewer', '/v1/projects/acme-web/databases/orders')).status).toBe(200);
    expect((await as('acme-billing', '/v1/projects/acme-web/databases/orders')).status).toBe(403);
    expect((await as('acme-billing', '/v1/orgs/acme/quotas')).status).toBe(200);

    // Customers do not manage orgs or targets; operators do.
    expect((await as('acme-owner', '/v1/orgs/acme', { method: 'DELETE' })).status).toBe(403);
    const target = { metadata: { name: 'mine' }, spec: { driver: 'local' } };
    expect((await as('acme-owner', '/v1/targets', { method: 'POST', json: target })).status).toBe(403);
    expect((await as('acme-owner', '/v1/targets')).status).toBe(200);
  });

  it('limits a membership narrowed to projects to those projects', async () => {
    expect((await as('acme-narrow', '/v1/projects/acme-web/databases/orders')).status).toBe(200);
    expect((await as('acme-narrow', '/v1/projects/acme-api/databases/ledger')).status).toBe(404);
    expect((await as('acme-narrow', '/v1/orgs/acme')).status).toBe(200);
    const project = { metadata: { name: 'narrow-made' }, spec: { org: 'acme' } };
    expect((await as('acme-narrow', '/v1/projects', { method: 'POST', json: project })).status).toBe(403);
  });

  it('streams project changes only of the orgs a member belongs to', async () => {
    const seen: string[] = [];
    const abort = new AbortController();
    const done = readSse(
      `${env.kumo.url}/v1/projects?watch=true`,
      { authorization: `Bearer ${env.tenants.tokens['acme-viewer']}` },
      (e) => seen.push(`${e.event} ${JSON.parse(e.data).metadata.name}`),
      abort.signal,
    );
    await waitFor(async () => seen.length >= 2 || undefined, 'the initial projects');
    await as('operator', '/v1/projects', {
      method: 'POST',
      json: { metadata: { name: 'globex-new' }, spec: { org: 'globex' } },
    });
    await as('operator', '/v1/projects', {
      method: 'POST',
      json: { metadata: { name: 'acme-new' }, spec: { org: 'acme' } },
    });
    await waitFor(async () => seen.includes('ADDED acme-new') || undefined, 'the new acme project');
    abort.abort();
    await done;
    expect(seen.filter((s) => s.includes('globex'))).toEqual([]);
  });
});

describe('open streams', () => {
  it('ends a watch when its member is removed from the org, and when its token is revoked', async () => {
    await as('operator', '/v1/users', { method: 'POST', json: { name: 'watcher' } });
    await as('operator', '/v1/orgs/acme/members/watcher', { method: 'PUT', json: { role: 'viewer' } });
    const token = async () =>
      (await body(
        as('operator', '/v1/tokens', { method: 'POST', json: { name: 'w', user: 'watcher' } }),
      )) as {
        id: string;
        token: string;
      };
    const follow = (secret: string, url: string) => {
      const events: Array<{ event: string; data: string }> = [];
      const ended = readSse(
        `${env.kumo.url}${url}`,
        { authorization: `Bearer ${secret}` },
        (e) => events.push(e),
        new AbortController().signal,
      );
      return { events, ended };
    };

    const first = await token();
    const databases = follow(first.token, '/v1/projects/acme-web/databases?watch=true');
    await waitFor(async () => databases.events.length > 0 || undefined, 'the initial databases');
    await as('operator', '/v1/orgs/acme/members/watcher', { method: 'DELETE' });
    await databases.ended; // the server ends the stream
    const last = databases.events.at(-1)!;
    expect(last.event).toBe('ERROR');
    expect(JSON.parse(last.data).status).toBe(404);

    await as('operator', '/v1/orgs/acme/members/watcher', { method: 'PUT', json: { role: 'viewer' } });
    const second = await token();
    const projects = follow(second.token, '/v1/projects?watch=true');
    await waitFor(async () => projects.events.length > 0 || undefined, 'the initial projects');
    await as('operator', `/v1/tokens/${second.id}`, { method: 'DELETE' });
    await projects.ended;
    expect(JSON.parse(projects.events.at(-1)!.data).status).toBe(401);
  });
});

describe('members', () => {
  it('lets admins manage members below owner, only owners touch owners, and keeps the last owner', async () => {
    await as('operator', '/v1/users', { method: 'POST', json: { name: 'newbie' } });
    const put = (actor: string, user: string, json: unknown) =>
      as(actor, `/v1/orgs/acme/members/${user}`, { method: 'PUT', json });
    expect((await put('acme-admin', 'newbie', { role: 'developer' })).status).toBe(200);
    expect((await put('acme-admin', 'newbie', { role: 'owner' })).status).toBe(403);
    expect((await put('acme-admin', 'acme-owner', { role: 'viewer' })).status).toBe(403);
    expect((await as('acme-admin', '/v1/orgs/acme/members/acme-owner', { method: 'DELETE' })).status).toBe(
      403,
    );
    expect((await put('acme-dev', 'newbie', { role: 'viewer' })).status).toBe(403);
    expect((await put('acme-admin', 'nobody', { role: 'viewer' })).status).toBe(404);
    const foreignProject = await put('acme-admin', 'newbie', { role: 'viewer', projects: ['globex-web'] });
    expect(foreignProject.status).toBe(422);

    const lastOwner = await as('acme-owner', '/v1/orgs/acme/members/acme-owner', { method: 'DELETE' });
    expect(lastOwner.status).toBe(409);
    expect(((await lastOwner.json()) as any).detail).toMatch(/last owner/);
    expect((await put('acme-owner', 'newbie', { role: 'owner' })).status).toBe(200);
    expect((await put('acme-owner', 'acme-owner', { role: 'owner' })).status).toBe(200);
    expect((await as('acme-owner', '/v1/orgs/acme/members/newbie', { method: 'DELETE' })).status).toBe(200);

    const members = await body(as('acme-viewer', '/v1/orgs/acme/members'));
    expect(members.items.find((m: any) => m.user === 'acme-owner').role).toBe('owner');
    expect(members.items.some((m: any) => m.user === 'newbie')).toBe(false);
  });

  it('takes a deleted project out of narrowed memberships and tokens, so its name reused shows nothing', async () => {
    const project = { metadata: { name: 'acme-temp' }, spec: { org: 'acme' } };
    expect((await as('operator', '/v1/projects', { method: 'POST', json: project })).status).toBe(201);
    await as('operator', '/v1/users', { method: 'POST', json: { name: 'temp' } });
    await as('acme-owner', '/v1/orgs/acme/members/temp', {
      method: 'PUT',
      json: { role: 'developer', projects: ['acme-temp'] },
    });
    const member = await body(
      as('operator', '/v1/tokens', { method: 'POST', json: { name: 't', user: 'temp' } }),
    );
    const narrowed = await body(
      as('acme-owner', '/v1/tokens', {
        method: 'POST',
        json: { name: 'temp-only', org: 'acme', projects: ['acme-temp', 'acme-web'], role: 'viewer' },
      }),
    );
    expect((await as(member.token, '/v1/projects/acme-temp')).status).toBe(200);
    expect((await as(narrowed.token, '/v1/projects/acme-temp')).status).toBe(200);

    await as('operator', '/v1/projects/acme-temp', { method: 'DELETE' });
    await waitFor(
      async () => ((await as('operator', '/v1/projects/acme-temp')).status === 404 ? true : undefined),
      'acme-temp to be gone',
    );
    await waitFor(async () => {
      const members = await body(as('acme-owner', '/v1/orgs/acme/members'));
      const temp = members.items.find((m: any) => m.user === 'temp');
      return temp.projects.length === 0 ? temp : undefined;
    }, 'the membership to forget acme-temp');
    expect((await as('operator', '/v1/projects', { method: 'POST', json: project })).status).toBe(201);
    expect((await as(member.token, '/v1/projects/acme-temp')).status).toBe(404);
    expect((await as(narrowed.token, '/v1/projects/acme-temp')).status).toBe(404);
    expect((await as(narrowed.token, '/v1/projects/acme-web')).status).toBe(200); // the rest still reaches
  });
});

describe('tokens', () => {
  const create = (actor: string, json: unknown) => as(actor, '/v1/tokens', { method: 'POST', json });

  it('never mints a token above its creator', async () => {
    expect((await create('acme-viewer', { name: 'up', role: 'developer' })).status).toBe(403);
    expect((await create('acme-viewer', { name: 'same', role: 'viewer' })).status).toBe(201);
    expect(
      (await create('acme-dev', { name: 'svc', service: true, org: 'acme', role: 'viewer' })).status,
    ).toBe(403);
    expect(
      (await create('acme-admin', { name: 'svc', service: true, org: 'acme', role: 'owner' })).status,
    ).toBe(403);
    expect(
      (await create('acme-admin', { name: 'svc', service: true, org: 'globex', role: 'viewer' })).status,
    ).toBe(404);
    expect((await create('acme-owner', { name: 'op', role: 'operator' })).status).toBe(403);

    // A capped token cannot create a token above its cap, though its user could.
    const capped = (await body(create('acme-owner', { name: 'ro', role: 'viewer' }))).token;
    expect((await create(capped, { name: 'up', role: 'admin' })).status).toBe(403);
    expect((await as(capped, '/v1/projects/acme-web/databases/orders/credentials')).status).toBe(403);
  });

  it('gives service tokens their org only, with their own role, surviving their creator', async () => {
    await as('operator', '/v1/users', { method: 'POST', json: { name: 'leaver' } });
    await as('operator', '/v1/orgs/acme/members/leaver', { method: 'PUT', json: { role: 'admin' } });
    const leaver = (
      await body(as('operator', '/v1/tokens', { method: 'POST', json: { name: 'l', user: 'leaver' } }))
    ).token;
    const svc = await body(create(leaver, { name: 'ci', service: true, org: 'acme', role: 'developer' }));
    expect(svc.principal).toBe('service:acme/ci');
    const db = { metadata: { name: 'from-ci' }, spec: parkedDatabase(1) };
    expect(
      (await as(svc.token, '/v1/projects/acme-api/databases', { method: 'POST', json: db })).status,
    ).toBe(201);
    expect((await as(svc.token, '/v1/projects/globex-web/databases')).status).toBe(404);
    expect((await as(svc.token, '/v1/orgs/acme/members/acme-dev', { method: 'DELETE' })).status).toBe(403);

    // The admins of acme see the service token; other members do not.
    expect((await body(as('acme-admin', '/v1/tokens'))).items.map((x: any) => x.id)).toContain(svc.id);
    expect((await body(as('acme-dev', '/v1/tokens'))).items.map((x: any) => x.id)).not.toContain(svc.id);
    expect((await as('acme-dev', `/v1/tokens/${svc.id}`, { method: 'DELETE' })).status).toBe(404);

    // Removing the user stops their tokens at once; the org's service token keeps working.
    expect((await as('operator', '/v1/users/leaver', { method: 'DELETE' })).status).toBe(200);
    expect((await as(leaver, '/v1/orgs')).status).toBe(401);
    expect((await as(svc.token, '/v1/projects/acme-api/databases/from-ci')).status).toBe(200);
  });

  it('limits a personal token to one org and some projects when asked', async () => {
    const narrow = await body(
      create('acme-owner', { name: 'web-only', org: 'acme', projects: ['acme-web'], role: 'viewer' }),
    );
    expect((await as(narrow.token, '/v1/projects/acme-web/databases/orders')).status).toBe(200);
    expect((await as(narrow.token, '/v1/projects/acme-api/databases/ledger')).status).toBe(404);
    expect(names(await body(as(narrow.token, '/v1/projects')))).toEqual(['acme-web']);
    const who = await body(as(narrow.token, '/v1/whoami'));
    expect(who).toMatchObject({ principal: 'user:acme-owner', role: 'viewer', org: 'acme' });
    expect(who.grants[0].permissions).not.toContain('resources.write');
  });

  it('refuses expired and revoked tokens', async () => {
    const made = await body(create('acme-dev', { name: 'short', expiresInDays: 1 }));
    expect((await as(made.token, '/v1/whoami')).status).toBe(200);
    const store = new pg.Client({ connectionString: env.kumo.databaseUrl });
    await store.connect();
    await store.query("UPDATE tokens SET expires_at = now() - interval '1 second' WHERE id = $1", [made.id]);
    await store.end();
    const expired = await as(made.token, '/v1/whoami');
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toBe('Bearer');

    const other = await body(create('acme-dev', { name: 'revoke-me' }));
    expect((await as('acme-dev', `/v1/tokens/${other.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await as(other.token, '/v1/whoami')).status).toBe(401);
  });
});

describe('quotas', () => {
  it('refuses at admission what would exceed a quota, says which and how much is left, and counts usage', async () => {
    await as('operator', '/v1/orgs', { method: 'POST', json: { metadata: { name: 'tiny' }, spec: {} } });
    await as('operator', '/v1/projects', {
      method: 'POST',
      json: { metadata: { name: 'tiny-p' }, spec: { org: 'tiny' } },
    });
    const quota = await as('operator', '/v1/orgs/tiny/quotas', {
      method: 'PATCH',
      json: { databases: 2, storageGB: 12 },
    });
    expect(quota.status).toBe(200);
    const create = (name: string, gb: number) =>
      as('operator', '/v1/projects/tiny-p/databases', {
        method: 'POST',
        json: { metadata: { name }, spec: parkedDatabase(gb) },
      });
    expect((await create('one', 5)).status).toBe(201);
    const tooBig = await create('two', 8);
    expect(tooBig.status).toBe(403);
    const problem = (await tooBig.json()) as any;
    expect(problem.type).toBe('https://kumo.dev/problems/quota-exceeded');
    expect(problem.quota).toMatchObject({
      scope: 'org',
      name: 'tiny',
      quota: 'storageGB',
      limit: 12,
      used: 5,
      remaining: 7,
    });
    expect(problem.detail).toMatch(/7 left/);
    expect((await create('two', 5)).status).toBe(201);
    expect((await create('three', 1)).status).toBe(403);

    const grow = await as('operator', '/v1/projects/tiny-p/databases/one', {
      method: 'PATCH',
      json: { spec: { storageGB: 8 } },
    });
    expect(grow.status).toBe(403);
    const report = await body(as('operator', '/v1/orgs/tiny/quotas'));
    expect(report.items).toEqual(
      expect.arrayContaining([
        { quota: 'databases', limit: 2, used: 2, remaining: 0 },
        { quota: 'storageGB', limit: 12, used: 10, remaining: 2 },
      ]),
    );
  });

  it('lets exactly one of many concurrent creates take the last unit', async () => {
    await as('operator', '/v1/orgs/acme/quotas', { method: 'PATCH', json: { databases: null } });
    const used = (await body(as('acme-owner', '/v1/orgs/acme/quotas'))).items.find(
      (i: any) => i.quota === 'databases',
    ).used;
    await as('operator', '/v1/orgs/acme/quotas', { method: 'PATCH', json: { databases: used + 1 } });
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        as('acme-dev', '/v1/projects/acme-api/databases', {
          method: 'POST',
          json: { metadata: { name: `race-${i}` }, spec: parkedDatabase(1) },
        }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 403, 403, 403, 403, 403]);
    await as('operator', '/v1/orgs/acme/quotas', { method: 'PATCH', json: { databases: null } });
  });

  it('lets org admins set project quotas but only operators set org quotas', async () => {
    expect(
      (await as('acme-admin', '/v1/orgs/acme/quotas', { method: 'PATCH', json: { databases: 99 } })).status,
    ).toBe(403);
    const set = await as('acme-admin', '/v1/projects/acme-web/quotas', {
      method: 'PATCH',
      json: { databases: 0 },
    });
    expect(set.status).toBe(200);
    const refused = await as('acme-dev', '/v1/projects/acme-web/databases', {
      method: 'POST',
      json: { metadata: { name: 'over' }, spec: parkedDatabase(1) },
    });
    expect(((await refused.json()) as any).quota).toMatchObject({
      scope: 'project',
      name: 'acme-web',
      quota: 'databases',
    });
    await as('acme-admin', '/v1/projects/acme-web/quotas', { method: 'PATCH', json: { databases: null } });
  });
});

describe('audit', () => {
  it("shows org admins their org's entries only, with who, what, and which token", async () => {
    await as('acme-dev', '/v1/projects/acme-web/databases/orders/credentials');
    const { items } = await body(as('acme-admin', '/v1/audit?org=acme&limit=1000'));
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((e: any) => e.org === 'acme')).toBe(true);
    expect(items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ actor: 'user:acme-dev', action: 'read-credentials', name: 'orders' }),
      ]),
    );
    expect(JSON.stringify(items)).not.toContain('globex');
    expect((await as('acme-admin', '/v1/audit')).status).toBe(422);
    expect((await as('acme-dev', '/v1/audit?org=acme')).status).toBe(403);
    expect((await as('globex-owner', '/v1/audit?org=acme')).status).toBe(404);
    expect((await body(as('operator', '/v1/audit?org=globex'))).items.length).toBeGreaterThan(0);
  });
});
