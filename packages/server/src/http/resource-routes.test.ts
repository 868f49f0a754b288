import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type TestKumo, startTestKumo } from '../testing/test-kumo.js';

let t: TestKumo;
beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
});
afterAll(() => t?.stop());

async function json(res: Response): Promise<any> {
  return res.json();
}

async function createOrg(name: string, labels: Record<string, string> = {}) {
  const res = await t.request('/v1/orgs', { method: 'POST', json: { metadata: { name, labels }, spec: {} } });
  expect(res.status).toBe(201);
  return json(res);
}

async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('create and read', () => {
  it('creates with the full envelope, ETag and Location, and rejects a duplicate name with 409', async () => {
    const res = await t.request('/v1/orgs', {
      method: 'POST',
      json: { metadata: { name: 'envelope' }, spec: { displayName: 'E' } },
    });
    expect(res.status).toBe(201);
    const org = await json(res);
    expect(org).toMatchObject({
      apiVersion: 'kumo.dev/v1',
      kind: 'Org',
      metadata: { name: 'envelope', generation: 1, deletionTimestamp: null },
      spec: { displayName: 'E' },
    });
    expect(org.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('etag')).toBe(`"${org.metadata.resourceVersion}"`);
    expect(res.headers.get('location')).toBe('/v1/orgs/envelope');

    const again = await t.request('/v1/orgs', {
      method: 'POST',
      json: { metadata: { name: 'envelope' }, spec: {} },
    });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toBe('application/problem+json');
    expect((await json(again)).type).toBe('https://kumo.dev/problems/already-exists');
  });

  it('answers 404 problem+json for a missing resource and for an unknown route', async () => {
    const res = await t.request('/v1/orgs/nope');
    expect(res.status).toBe(404);
    expect(await json(res)).toMatchObject({ type: 'https://kumo.dev/problems/not-found', status: 404 });
    const route = await t.request('/v1/gadgets');
    expect(route.status).toBe(404);
    expect(route.headers.get('content-type')).toBe('application/problem+json');
  });

  it('needs a project whose org exists, and a project-scoped resource whose project exists', async () => {
    const orphan = await t.request('/v1/projects', {
      method: 'POST',
      json: { metadata: { name: 'orphan' }, spec: { org: 'missing-org' } },
    });
    expect(orphan.status).toBe(404);
    expect((await json(orphan)).detail).toContain('Org missing-org does not exist');
    const db = await t.request('/v1/projects/missing/databases', {
      method: 'POST',
      json: { metadata: { name: 'orders' }, spec: { engine: 'postgres', version: '15', plan: 'small' } },
    });
    expect(db.status).toBe(404);
  });
});

describe('optimistic concurrency', () => {
  it('lets exactly one of two writers with the same If-Match win; the other gets 412 and nothing is lost', async () => {
    await createOrg('race');
    // The org's controller writes its status meanwhile (a new resourceVersion), and then both
    // writers lose: they try again from a fresh read. Both winning is what must never happen.
    let a: Response;
    let b: Response;
    let tries = 0;
    do {
      const rv = (await json(await t.request('/v1/orgs/race'))).metadata.resourceVersion;
      const write = (displayName: string) =>
        t.request('/v1/orgs/race', {
          method: 'PATCH',
          headers: { 'if-match': `"${rv}"` },
          json: { spec: { displayName } },
        });
      [a, b] = await Promise.all([write('A'), write('B')]);
      expect([a.status, b.status]).not.toEqual([200, 200]);
    } while (a.status === 412 && b.status === 412 && ++tries < 20);
    expect([a.status, b.status].sort()).toEqual([200, 412]);
    const winner = a.status === 200 ? 'A' : 'B';
    const loser = a.status === 412 ? a : b;
    expect((await json(loser)).type).toBe('https://kumo.dev/problems/precondition-failed');
    const now = await json(await t.request('/v1/orgs/race'));
    expect(now.spec.displayName).toBe(winner);
    // The loser re-reads and retries with the current version (a controller may write status
    // meanwhile, so it loops like any careful client): both changes end up in.
    let retry: Response;
    do {
      const current = await json(await t.request('/v1/orgs/race'));
      retry = await t.request('/v1/orgs/race', {
        method: 'PATCH',
        headers: { 'if-match': current.metadata.resourceVersion },
        json: { metadata: { labels: { by: 'loser' } } },
      });
    } while (retry.status === 412);
    expect(retry.status).toBe(200);
    expect(await json(retry)).toMatchObject({
      spec: { displayName: winner },
      metadata: { labels: { by: 'loser' } },
    });
  });

  it('treats metadata.resourceVersion in a PUT body as a precondition', async () => {
    const org = await createOrg('put-rv');
    await t.request('/v1/orgs/put-rv', { method: 'PATCH', json: { spec: { displayName: 'changed' } } });
    const stale = await t.request('/v1/orgs/put-rv', {
      method: 'PUT',
      json: { ...org, spec: { displayName: 'stale' } },
    });
    expect(stale.status).toBe(412);
  });
});

describe('idempotent POST', () => {
  it('returns the first result for a retry with the same Idempotency-Key, and refuses the key for another request', async () => {
    const body = { metadata: { name: 'idem' }, spec: { displayName: 'first' } };
    const headers = { 'idempotency-key': 'key-1' };
    const [first, second] = await Promise.all([
      t.request('/v1/orgs', { method: 'POST', headers, json: body }),
      t.request('/v1/orgs', { method: 'POST', headers, json: body }),
    ]);
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    const [a, b] = [await json(first), await json(second)];
    expect(a.metadata.uid).toBe(b.metadata.uid);
    const third = await t.request('/v1/orgs', { method: 'POST', headers, json: body });
    expect(third.status).toBe(201);
    expect(third.headers.get('idempotent-replayed')).toBe('true');
    expect((await json(third)).metadata.uid).toBe(a.metadata.uid);

    const other = await t.request('/v1/orgs', {
      method: 'POST',
      headers,
      json: { metadata: { name: 'idem-2' }, spec: {} },
    });
    expect(other.status).toBe(422);
    expect((await json(other)).errors[0].field).toBe('header.idempotency-key');
    expect((await t.request('/v1/orgs/idem-2')).status).toBe(404);
  });
});

describe('generation and status', () => {
  it('bumps generation on spec changes only; controllers report observedGeneration', async () => {
    await createOrg('gen');
    const ready = await waitFor(async () => {
      const o = await json(await t.request('/v1/orgs/gen'));
      return o.status.phase === 'Ready' ? o : undefined;
    }, 'org Ready');
    expect(ready.status.observedGeneration).toBe(1);
    expect(ready.status.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'True' }),
    );

    const labelled = await json(
      await t.request('/v1/orgs/gen', { method: 'PATCH', json: { metadata: { labels: { a: 'b' } } } }),
    );
    expect(labelled.metadata.generation).toBe(1);
    const changed = await json(
      await t.request('/v1/orgs/gen', { method: 'PATCH', json: { spec: { displayName: 'G' } } }),
    );
    expect(changed.metadata.generation).toBe(2);
    const caughtUp = await waitFor(async () => {
      const o = await json(await t.request('/v1/orgs/gen'));
      return o.status.observedGeneration === 2 ? o : undefined;
    }, 'observedGeneration 2');
    expect(caughtUp.status.phase).toBe('Ready');
    // A no-op write changes nothing, not even the resourceVersion.
    const same = await json(
      await t.request('/v1/orgs/gen', { method: 'PATCH', json: { spec: { displayName: 'G' } } }),
    );
    expect(same.metadata.resourceVersion).toBe(caughtUp.metadata.resourceVersion);
  });

  it('writes status only through /status, validated, without touching generation', async () => {
    await createOrg('stat');
    const viaPatch = await t.request('/v1/orgs/stat', {
      method: 'PATCH',
      json: { status: { phase: 'Ready' } },
    });
    expect(viaPatch.status).toBe(422);
    expect((await json(viaPatch)).errors[0].field).toBe('status');
    const viaPut = await t.request('/v1/orgs/stat', {
      method: 'PUT',
      json: { metadata: { name: 'stat' }, spec: {}, status: { phase: 'Error' } },
    });
    expect((await json(viaPut)).status.phase).not.toBe('Error');

    const bad = await t.request('/v1/orgs/stat/status', { method: 'PATCH', json: { phase: 'Sleeping' } });
    expect(bad.status).toBe(422);
    expect((await json(bad)).errors[0].field).toBe('status.phase');
    const good = await t.request('/v1/orgs/stat/status', { method: 'PATCH', json: { phase: 'Degraded' } });
    expect(good.status).toBe(200);
    expect(await json(good)).toMatchObject({ metadata: { generation: 1 }, status: { phase: 'Degraded' } });
  });

  it('refuses to change an immutable field', async () => {
    await createOrg('imm-a');
    await createOrg('imm-b');
    expect(
      (
        await t.request('/v1/projects', {
          method: 'POST',
          json: { metadata: { name: 'imm' }, spec: { org: 'imm-a' } },
        })
      ).status,
    ).toBe(201);
    const res = await t.request('/v1/projects/imm', { method: 'PATCH', json: { spec: { org: 'imm-b' } } });
    expect(res.status).toBe(422);
    expect((await json(res)).errors).toEqual([{ field: 'spec.org', message: 'is immutable' }]);
  });
});

describe('finalizers', () => {
  it('keeps a resource with finalizers in phase Deleting until the last finalizer is removed', async () => {
    await createOrg('fin');
    await t.request('/v1/orgs/fin', {
      method: 'PATCH',
      json: { metadata: { finalizers: ['kumo.dev/org-projects', 'example.com/hold'] } },
    });
    const del = await t.request('/v1/orgs/fin', { method: 'DELETE' });
    expect(del.status).toBe(202);
    const deleting = await json(del);
    expect(deleting.metadata.deletionTimestamp).not.toBeNull();
    expect(deleting.status.phase).toBe('Deleting');
    // The org controller releases its own finalizer (no projects); ours still holds it.
    const held = await waitFor(async () => {
      const o = await json(await t.request('/v1/orgs/fin'));
      return o.metadata.finalizers.length === 1 ? o : undefined;
    }, 'controller finalizer released');
    expect(held.metadata.finalizers).toEqual(['example.com/hold']);
    const add = await t.request('/v1/orgs/fin', {
      method: 'PATCH',
      json: { metadata: { finalizers: ['example.com/hold', 'example.com/more'] } },
    });
    expect(add.status).toBe(409);
    const release = await t.request('/v1/orgs/fin', {
      method: 'PATCH',
      json: { metadata: { finalizers: [] } },
    });
    expect(release.status).toBe(200);
    expect((await t.request('/v1/orgs/fin')).status).toBe(404);
  });

  it('deletes a project with everything in it, and refuses new resources in a project that is being deleted', async () => {
    await createOrg('casc');
    await t.request('/v1/projects', {
      method: 'POST',
      json: { metadata: { name: 'casc-p' }, spec: { org: 'casc' } },
    });
    const db = { engine: 'postgres', version: '15', plan: 'small' };
    for (const name of ['one', 'two']) {
      const res = await t.request('/v1/projects/casc-p/databases', {
        method: 'POST',
        json: { metadata: { name }, spec: db },
      });
      expect(res.status).toBe(201);
      const created = await json(res);
      expect(created.spec).toMatchObject({ storageGB: 10, acl: [], parameters: {}, stopped: false });
      expect(created.status.phase).toBe('Pending');
    }
    await t.request('/v1/projects/casc-p/databases/two', {
      method: 'PATCH',
      json: { metadata: { finalizers: ['example.com/slow'] } },
    });
    expect((await t.request('/v1/orgs/casc', { method: 'DELETE' })).status).toBe(202);
    await waitFor(
      async () => ((await t.request('/v1/projects/casc-p/databases/one')).status === 404 ? true : undefined),
      'db one gone',
    );
    const blocked = await t.request('/v1/projects/casc-p/databases', {
      method: 'POST',
      json: { metadata: { name: 'three' }, spec: db },
    });
    expect(blocked.status).toBe(409);
    const project = await json(await t.request('/v1/projects/casc-p'));
    expect(project.status.phase).toBe('Deleting');
    await waitFor(async () => {
      const p = await json(await t.request('/v1/projects/casc-p'));
      return p.status.conditions?.some(
        (c: { message: string }) => c.message === 'waiting for 1 resource(s) to be deleted',
      )
        ? true
        : undefined;
    }, 'project waiting condition');
    const events = await json(await t.request('/v1/projects/casc-p/events'));
    expect(events.items).toContainEqual(
      expect.objectContaining({
        type: 'Normal',
        reason: 'DeletingChildren',
        message: 'deleting 2 resource(s)',
        count: 1,
      }),
    );
    await t.request('/v1/projects/casc-p/databases/two', {
      method: 'PATCH',
      json: { metadata: { finalizers: [] } },
    });
    await waitFor(
      async () => ((await t.request('/v1/orgs/casc')).status === 404 ? true : undefined),
      'org gone',
    );
    expect((await t.request('/v1/projects/casc-p')).status).toBe(404);
  });
});

describe('lists', () => {
  it('filters by label selector and paginates with limit and continue', async () => {
    const envs = ['prod', 'prod', 'staging', 'dev', 'prod'];
    for (const [i, env] of envs.entries())
      await createOrg(`sel-${i}`, { env, ...(i === 4 ? { legacy: 'yes' } : {}), suite: 'sel' });
    const names = async (q: string) =>
      (await json(await t.request(`/v1/orgs?${q}`))).items.map(
        (o: { metadata: { name: string } }) => o.metadata.name,
      );
    expect(await names('labelSelector=suite=sel,env=prod')).toEqual(['sel-0', 'sel-1', 'sel-4']);
    expect(await names('labelSelector=suite=sel,env!=prod')).toEqual(['sel-2', 'sel-3']);
    expect(await names(`labelSelector=${encodeURIComponent('suite=sel,env in (dev,staging)')}`)).toEqual([
      'sel-2',
      'sel-3',
    ]);
    expect(await names(`labelSelector=${encodeURIComponent('suite=sel,env=prod,!legacy')}`)).toEqual([
      'sel-0',
      'sel-1',
    ]);
    expect(await names('labelSelector=legacy')).toEqual(['sel-4']);

    const seen: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const page = await json(
        await t.request(`/v1/orgs?labelSelector=suite=sel&limit=2${cont ? `&continue=${cont}` : ''}`),
      );
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((o: { metadata: { name: string } }) => o.metadata.name));
      cont = page.metadata.continue;
      pages++;
    } while (cont);
    expect(pages).toBe(3);
    expect(seen).toEqual(['sel-0', 'sel-1', 'sel-2', 'sel-3', 'sel-4']);

    const bad = await t.request(`/v1/orgs?labelSelector=${encodeURIComponent('env in (a')}`);
    expect(bad.status).toBe(422);
    expect((await json(bad)).errors[0].field).toBe('query.labelSelector');
    expect((await t.request('/v1/orgs?continue=garbage!')).status).toBe(400);
    expect((await t.request('/v1/orgs?limit=0')).status).toBe(422);
  });
});

describe('bad input never yields a 5xx', () => {
  const cases: Array<{
    reason: string;
    path: string;
    init: RequestInit & { json?: unknown };
    status: number;
    field?: string;
  }> = [
    {
      reason: 'malformed JSON',
      path: '/v1/orgs',
      init: { method: 'POST', body: '{"metadata": ', headers: { 'content-type': 'application/json' } },
      status: 400,
    },
    { reason: 'a JSON array body', path: '/v1/orgs', init: { method: 'POST', json: [1, 2] }, status: 422 },
    {
      reason: 'a wrong type',
      path: '/v1/orgs',
      init: { method: 'POST', json: { metadata: { name: 'x' }, spec: { displayName: 7 } } },
      status: 422,
      field: 'spec.displayName',
    },
    {
      reason: 'an unknown spec field',
      path: '/v1/orgs',
      init: { method: 'POST', json: { metadata: { name: 'x' }, spec: { colour: 'red' } } },
      status: 422,
      field: 'spec.colour',
    },
    {
      reason: 'an unknown top-level field',
      path: '/v1/orgs',
      init: { method: 'POST', json: { metadata: { name: 'x' }, spec: {}, extra: 1 } },
      status: 422,
      field: 'extra',
    },
    {
      reason: 'a missing spec',
      path: '/v1/orgs',
      init: { method: 'POST', json: { metadata: { name: 'x' } } },
      status: 422,
      field: 'spec',
    },
    {
      reason: 'an upper-case name',
      path: '/v1/orgs',
      init: { method: 'POST', json: { metadata: { name: 'Shop' }, spec: {} } },
      status: 422,
      field: 'metadata.name',
    },
    {
      reason: 'a name too long for a DNS label',
      path: '/v1/orgs',
      init: { method: 'POST', json: { metadata: { name: 'a'.repeat(64) }, spec: {} } },
      status: 422,
      field: 'metadata.name',
    },
    { reason: 'a bad name in the URL', path: '/v1/orgs/Bad_Name', init: {}, status: 422, field: 'path.name' },
    {
      reason: 'a bad label value',
      path: '/v1/orgs',
      init: { method: 'POST', json: { metadata: { name: 'x', labels: { env: 'has space' } }, spec: {} } },
      status: 422,
    },
    {
      reason: 'a bad CIDR',
      path: '/v1/projects/p/databases',
      init: {
        method: 'POST',
        json: {
          metadata: { name: 'x' },
          spec: { engine: 'postgres', version: '15', plan: 'small', acl: [{ cidr: '10.0.0.300/8' }] },
        },
      },
      status: 422,
      field: 'spec.acl.0.cidr',
    },
    {
      reason: 'an unknown engine',
      path: '/v1/projects/p/databases',
      init: {
        method: 'POST',
        json: { metadata: { name: 'x' }, spec: { engine: 'oracle', version: '15', plan: 'small' } },
      },
      status: 422,
      field: 'spec.engine',
    },
    {
      reason: 'a body that is not JSON',
      path: '/v1/orgs',
      init: {
        method: 'POST',
        body: 'name=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      status: 415,
    },
    {
      reason: 'an oversized body',
      path: '/v1/orgs',
      init: {
        method: 'POST',
        json: { metadata: { name: 'big' }, spec: { description: 'x'.repeat(2 * 1024 * 1024) } },
      },
      status: 413,
    },
    {
      reason: 'a merge patch that is not an object',
      path: '/v1/orgs/envelope',
      init: { method: 'PATCH', json: 'text' },
      status: 422,
    },
    {
      reason: 'a bad resourceVersion to watch from',
      path: '/v1/orgs?watch=true&resourceVersion=abc',
      init: {},
      status: 422,
      field: 'query.resourceVersion',
    },
    { reason: 'no token', path: '/v1/orgs', init: { headers: { authorization: '' } }, status: 401 },
    {
      reason: 'a wrong token',
      path: '/v1/orgs',
      init: { headers: { authorization: 'Bearer kumo_AAAAAAAAAAAA_' + 'A'.repeat(43) } },
      status: 401,
    },
  ];
  for (const c of cases) {
    it(`answers ${c.status} for ${c.reason}`, async () => {
      const headers = new Headers(c.init.headers);
      const res = await t.request(
        c.path,
        c.init.headers && headers.get('authorization') === '' ? { ...c.init, headers: {} } : c.init,
      );
      // t.request adds the admin token unless the case replaces it; the no-token case sends none.
      const final = c.reason === 'no token' ? await t.kumo.app.request(c.path) : res;
      expect(final.status).toBe(c.status);
      expect(final.headers.get('content-type')).toBe('application/problem+json');
      const problem = await json(final);
      expect(problem.type).toMatch(/^https:\/\/kumo\.dev\/problems\//);
      expect(problem.detail.length).toBeGreaterThan(10);
      if (c.field) expect(problem.errors.map((e: { field: string }) => e.field)).toContain(c.field);
    });
  }
});

describe('system routes', () => {
  it('serves an OpenAPI 3.1 document generated from the schemas, and health endpoints without a token', async () => {
    const res = await t.kumo.app.request('/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = await json(res);
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/orgs',
        '/v1/projects/{project}/databases/{name}',
        '/v1/orgs/{name}/status',
      ]),
    );
    expect(doc.components.schemas.OrgSpec.additionalProperties).toBe(false);
    expect((await t.kumo.app.request('/livez')).status).toBe(200);
    const ready = await t.kumo.app.request('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', bus: 'connected' });
    expect((await t.kumo.app.request('/metrics')).status).toBe(401);
    const metrics = await (await t.request('/metrics')).text();
    expect(metrics).toContain('kumo_http_requests_total');
    // This suite's writes went out through the outbox relay, and the bus takes messages.
    expect(Number(/^kumo_outbox_published_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/^kumo_bus_connected 1$/m);
    // Paths no route serves are problems, never the console's page; every answer names its request.
    for (const path of ['/healthz', '/v2/orgs', '/projects/x']) {
      const res = await t.kumo.app.request(path, { headers: { 'x-request-id': 'probe-1' } });
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toBe('application/problem+json');
      expect(res.headers.get('x-request-id'), path).toBe('probe-1');
    }
    const unauthorized = await t.kumo.app.request('/v1/orgs', { headers: { 'x-request-id': 'probe-2' } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('x-request-id')).toBe('probe-2');
    expect(metrics).toContain('kumo_reconcile_total{controller="org-cascade"');
    expect(metrics).toContain('kumo_workqueue_depth');
  });

  it('lists events of a resource', async () => {
    const res = await t.request('/v1/orgs/envelope/events');
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ items: [] });
  });
});
