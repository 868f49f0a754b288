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
    // At the level of the org, only that it exists: not who its members are.
    const members = await as('acme-narrow', '/v1/orgs/acme/members');
    expect(members.status).toBe(403);
    const text = await members.text();
    expect(JSON.parse(text).detail).toMatch(/limited to projects acme-web.*members\.read/);
    expect(text).not.toContain('acme-owner');
    expect((await as('acme-viewer', '/v1/orgs/acme/members')).status).toBe(200);
  });

  it('answers a taken project name alike whichever org holds it, naming neither', async () => {
    const create = (name: string) =>
      as('acme-owner', '/v1/projects', {
        method: 'POST',
        json: { metadata: { name }, spec: { org: 'acme' } },
      });
    const [foreign, own] = [await create('globex-web'), await create('acme-web')];
    expect([foreign.status, own.status]).toEqual([409, 409]);
    const shape = async (res: Response, name: string) => {
      const p = (await res.json()) as any;
      return { type: p.type, title: p.title, status: p.status, detail: p.detail.replace(name, 'X') };
    };
    const answer = await shape(foreign, 'globex-web');
    expect(answer).toEqual(await shape(own, 'acme-web'));
    expect(answer.detail).toMatch(/not available/);
    expect(answer.detail).not.toMatch(/globex|acme/);
    expect((await as('acme-owner', '/v1/projects/globex-web')).status).toBe(404); // still invisible
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
  it('lets admins change members below owner, only owners touch owners, and keeps the last owner', async () => {
    await as('operator', '/v1/users', { method: 'POST', json: { name: 'newbie' } });
    const put = (actor: string, user: string, json: unknown) =>
      as(actor, `/v1/orgs/acme/members/${user}`, { method: 'PUT', json });
    // Operators add members directly; owners and admins only change those there are (and invite).
    expect((await put('operator', 'newbie', { role: 'viewer' })).status).toBe(200);
    expect((await put('acme-admin', 'newbie', { role: 'developer' })).status).toBe(200);
    expect((await put('acme-admin', 'newbie', { role: 'owner' })).status).toBe(403);
    expect((await put('acme-admin', 'acme-owner', { role: 'viewer' })).status).toBe(403);
    expect((await as('acme-admin', '/v1/orgs/acme/members/acme-owner', { method: 'DELETE' })).status).toBe(
      403,
    );
    expect((await put('acme-dev', 'newbie', { role: 'viewer' })).status).toBe(403);
    expect((await put('operator', 'nobody', { role: 'viewer' })).status).toBe(404);
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

  it("cannot add another org's user, nor learn which user names exist", async () => {
    // globex-owner is a user; "no-such-user" is not. Neither can be made a member by an admin.
    const [existing, missing] = [
      await as('acme-admin', '/v1/orgs/acme/members/globex-owner', {
        method: 'PUT',
        json: { role: 'viewer' },
      }),
      await as('acme-admin', '/v1/orgs/acme/members/no-such-user', {
        method: 'PUT',
        json: { role: 'viewer' },
      }),
    ];
    expect([existing.status, missing.status]).toEqual([404, 404]);
    const detail = async (res: Response, name: string) =>
      ((await res.json()) as any).detail.replace(name, 'X');
    expect(await detail(existing, 'globex-owner')).toBe(await detail(missing, 'no-such-user'));
    expect(names(await body(as('globex-owner', '/v1/orgs')))).toEqual(['globex']);
  });

  it('takes a deleted project out of narrowed memberships, invitations and tokens, so its name reused shows nothing', async () => {
    const project = { metadata: { name: 'acme-temp' }, spec: { org: 'acme' } };
    expect((await as('operator', '/v1/projects', { method: 'POST', json: project })).status).toBe(201);
    await as('operator', '/v1/users', { method: 'POST', json: { name: 'temp' } });
    await as('operator', '/v1/orgs/acme/members/temp', {
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
    const invited = await body(
      as('acme-owner', '/v1/orgs/acme/invitations', {
        method: 'POST',
        json: { user: 'temp-invitee', role: 'viewer', projects: ['acme-temp'] },
      }),
    );
    expect(invited.projects).toEqual(['acme-temp']);
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
    const pending = await body(as('acme-owner', '/v1/orgs/acme/invitations'));
    expect(pending.items.find((i: any) => i.user === 'temp-invitee').projects).toEqual([]);
    expect((await as('operator', '/v1/projects', { method: 'POST', json: project })).status).toBe(201);
    expect((await as(member.token, '/v1/projects/acme-temp')).status).toBe(404);
    expect((await as(narrowed.token, '/v1/projects/acme-temp')).status).toBe(404);
    expect((await as(narrowed.token, '/v1/projects/acme-web')).status).toBe(200); // the rest still reaches
  });
});

describe('invitations', () => {
  const invite = (actor: string, json: unknown) =>
    as(actor, '/v1/orgs/acme/invitations', { method: 'POST', json });
  const tokenOf = async (user: string, extra: object = {}) =>
    (await body(as('operator', '/v1/tokens', { method: 'POST', json: { name: 'i', user, ...extra } })))
      .token as string;
  const memberNames = async () =>
    (await body(as('acme-owner', '/v1/orgs/acme/members'))).items.map((m: any) => m.user);

  it('adds a member only when the invited user accepts, answering the inviter alike for any name', async () => {
    await as('operator', '/v1/users', { method: 'POST', json: { name: 'invitee' } });
    const invitee = await tokenOf('invitee');
    const real = await invite('acme-admin', { user: 'invitee', role: 'developer', projects: ['acme-web'] });
    const ghost = await invite('acme-admin', { user: 'ghost', role: 'developer', projects: ['acme-web'] });
    expect([real.status, ghost.status]).toEqual([201, 201]);
    const [a, b] = [await real.json(), await ghost.json()] as any[];
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    expect({ ...a, id: '', user: '', createdAt: '', expiresAt: '' }).toEqual({
      ...b,
      id: '',
      user: '',
      createdAt: '',
      expiresAt: '',
    });
    expect(a).toMatchObject({
      org: 'acme',
      role: 'developer',
      projects: ['acme-web'],
      invitedBy: 'user:acme-admin',
    });
    expect(await memberNames()).not.toContain('invitee'); // not before they agree

    const pending = (await body(as('acme-admin', '/v1/orgs/acme/invitations'))).items.map((i: any) => i.user);
    expect(pending).toEqual(expect.arrayContaining(['ghost', 'invitee']));
    expect((await body(as(invitee, '/v1/invitations'))).items.map((i: any) => i.id)).toEqual([a.id]);

    // Nobody else can take it: not another member, not another org's owner, not the operator.
    const notYours = await as('acme-dev', `/v1/invitations/${a.id}/accept`, { method: 'POST' });
    const unknown = await as('acme-dev', `/v1/invitations/${crypto.randomUUID()}/accept`, { method: 'POST' });
    expect([notYours.status, unknown.status]).toEqual([404, 404]);
    expect(((await notYours.json()) as any).detail.replace(a.id, 'X')).toBe(
      ((await unknown.json()) as any).detail.replace(/[0-9a-f-]{36}/, 'X'),
    );
    expect((await as('globex-owner', `/v1/invitations/${a.id}/decline`, { method: 'POST' })).status).toBe(
      404,
    );
    expect((await as('operator', `/v1/invitations/${a.id}/accept`, { method: 'POST' })).status).toBe(403);
    expect((await body(as('acme-dev', '/v1/invitations'))).items).toEqual([]);

    const accepted = await as(invitee, `/v1/invitations/${a.id}/accept`, { method: 'POST' });
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toMatchObject({
      org: 'acme',
      user: 'invitee',
      role: 'developer',
      projects: ['acme-web'],
    });
    expect((await as(invitee, '/v1/projects/acme-web/databases/orders')).status).toBe(200);
    expect((await as(invitee, '/v1/projects/acme-api/databases/ledger')).status).toBe(404);
    expect((await as(invitee, `/v1/invitations/${a.id}/accept`, { method: 'POST' })).status).toBe(404);
    expect(
      (await body(as('acme-admin', '/v1/orgs/acme/invitations'))).items.map((i: any) => i.user),
    ).not.toContain('invitee');
    // Inviting a member again is refused: they are in the org's member list anyway.
    expect((await invite('acme-admin', { user: 'invitee', role: 'viewer' })).status).toBe(409);

    const { items } = await body(as('acme-owner', '/v1/audit?org=acme&kind=Member&limit=100'));
    expect(items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ actor: 'user:acme-admin', action: 'invite-member', name: 'invitee' }),
        expect.objectContaining({ actor: 'user:invitee', action: 'accept-invitation', name: 'invitee' }),
        expect.objectContaining({ actor: 'user:invitee', action: 'add-member', name: 'invitee' }),
      ]),
    );
    await as('acme-admin', `/v1/orgs/acme/invitations/${b.id}`, { method: 'DELETE' });
  });

  it('lets the invited user decline, owners alone invite or uninvite owners, and forgets a deleted user', async () => {
    await as('operator', '/v1/users', { method: 'POST', json: { name: 'decliner' } });
    const decliner = await tokenOf('decliner');
    const offer = await body(invite('acme-admin', { user: 'decliner', role: 'viewer' }));
    expect((await as(decliner, `/v1/invitations/${offer.id}/decline`, { method: 'POST' })).status).toBe(200);
    expect(await memberNames()).not.toContain('decliner');
    expect((await as(decliner, `/v1/invitations/${offer.id}/accept`, { method: 'POST' })).status).toBe(404);

    expect((await invite('acme-admin', { user: 'decliner', role: 'owner' })).status).toBe(403);
    const owner = await body(invite('acme-owner', { user: 'decliner', role: 'owner' }));
    expect(owner.role).toBe('owner');
    const cancel = (actor: string) =>
      as(actor, `/v1/orgs/acme/invitations/${owner.id}`, { method: 'DELETE' });
    expect((await cancel('acme-admin')).status).toBe(403);
    // Nor can an admin replace it by inviting the same name again as something else.
    expect((await invite('acme-admin', { user: 'decliner', role: 'viewer' })).status).toBe(403);
    expect((await body(as('acme-owner', '/v1/orgs/acme/invitations'))).items).toContainEqual(
      expect.objectContaining({ id: owner.id, role: 'owner' }),
    );
    expect((await cancel('acme-dev')).status).toBe(403);
    expect((await cancel('globex-owner')).status).toBe(404);
    expect((await cancel('acme-owner')).status).toBe(200);
    expect((await as(decliner, `/v1/invitations/${owner.id}/accept`, { method: 'POST' })).status).toBe(404);

    // A token limited to another org does not act on this org's invitations.
    await as('operator', '/v1/orgs/globex/members/decliner', { method: 'PUT', json: { role: 'viewer' } });
    const again = await body(invite('acme-admin', { user: 'decliner', role: 'viewer' }));
    const elsewhere = await as(decliner, '/v1/tokens', {
      method: 'POST',
      json: { name: 'elsewhere', org: 'globex', role: 'viewer' },
    });
    expect(elsewhere.status).toBe(201);
    const globexOnly = ((await elsewhere.json()) as any).token;
    expect((await body(as(globexOnly, '/v1/invitations'))).items).toEqual([]);
    expect((await as(globexOnly, `/v1/invitations/${again.id}/accept`, { method: 'POST' })).status).toBe(404);
    expect((await body(as(decliner, '/v1/invitations'))).items.map((i: any) => i.id)).toEqual([again.id]);

    // Deleting the user takes their invitations: a user made later under the name finds none.
    expect((await as('operator', '/v1/users/decliner', { method: 'DELETE' })).status).toBe(200);
    await as('operator', '/v1/users', { method: 'POST', json: { name: 'decliner' } });
    const successor = await tokenOf('decliner');
    expect((await body(as(successor, '/v1/invitations'))).items).toEqual([]);
    expect((await as(successor, `/v1/invitations/${again.id}/accept`, { method: 'POST' })).status).toBe(404);
  });

  it('lets an invitation lapse after its days, for the invited user and the org alike', async () => {
    await as('operator', '/v1/users', { method: 'POST', json: { name: 'late' } });
    const late = await tokenOf('late');
    const offer = await body(invite('acme-admin', { user: 'late', role: 'viewer' }));
    const days = (Date.parse(offer.expiresAt) - Date.parse(offer.createdAt)) / 86_400_000;
    expect(Math.round(days)).toBe(7);
    const store = new pg.Client({ connectionString: env.kumo.databaseUrl });
    await store.connect();
    await store.query("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1", [
      offer.id,
    ]);
    await store.end();
    expect((await body(as(late, '/v1/invitations'))).items).toEqual([]);
    const pending = (await body(as('acme-admin', '/v1/orgs/acme/invitations'))).items;
    expect(pending.map((i: any) => i.user)).not.toContain('late');
    expect((await as(late, `/v1/invitations/${offer.id}/accept`, { method: 'POST' })).status).toBe(404);
    expect(await memberNames()).not.toContain('late');
    // Inviting again makes a new, pending one.
    const anew = await body(invite('acme-admin', { user: 'late', role: 'viewer' }));
    expect(anew.id).not.toBe(offer.id);
    expect((await as(late, `/v1/invitations/${anew.id}/accept`, { method: 'POST' })).status).toBe(200);
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
