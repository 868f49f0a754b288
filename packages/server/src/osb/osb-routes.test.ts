import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DatabaseTestKumo, startKumoWithProject } from '../testing/database-helpers.js';
import { waitFor } from '../testing/wait.js';
import { planIdOf, serviceIdOf, uuidV5 } from './osb-ids.js';
import { type BrokerClient, brokerClient } from './osb-test-client.js';

// The Open Service Broker API 2.17, endpoint by endpoint and case by case, as its text says
// (quoted in each case's reason), against a whole Kumo with real PostgreSQL servers.
let t: DatabaseTestKumo;
let osb: BrokerClient;
let other: BrokerClient;
let ids: { serviceId: string; planId: string; mediumId: string };

const INSTANCE = '2f1c6a0e-0d2b-4c8e-9f55-1a2b3c4d5e6f';
const path = (id = INSTANCE) => `/v2/service_instances/${id}`;
const bindingPath = (binding: string, id = INSTANCE) => `${path(id)}/service_bindings/${binding}`;
const provision = (parameters: Record<string, unknown> = { acl: [{ cidr: '127.0.0.2/32' }] }) => ({
  service_id: ids.serviceId,
  plan_id: ids.planId,
  organization_guid: 'cf-org',
  space_guid: 'cf-space',
  parameters,
});
const query = () => `service_id=${ids.serviceId}&plan_id=${ids.planId}`;
const state = async (client: BrokerClient, url: string) => {
  const res = await client.call('GET', url);
  return res.status === 410 ? 'gone' : (res.body as { state: string }).state;
};
const until = (client: BrokerClient, url: string, wanted: string) =>
  waitFor(async () => ((await state(client, url)) === wanted ? true : undefined), `${url} ${wanted}`, 90_000);

beforeAll(async () => {
  t = await startKumoWithProject(inject('pg'), 'broker');
  await t.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'globex' }, spec: {} } });
  await t.request('/v1/projects', {
    method: 'POST',
    json: { metadata: { name: 'globex-broker' }, spec: { org: 'globex' } },
  });
  osb = await brokerClient(t, 'acme', 'broker');
  other = await brokerClient(t, 'globex', 'globex-broker');
  const small = await osb.plan('postgres', 'small');
  ids = { ...small, mediumId: (await osb.plan('postgres', 'medium')).planId };
}, 60_000);
afterAll(async () => {
  await t?.stop();
});

describe('authentication and headers', () => {
  const cases = [
    {
      reason: 'no credentials: "401 Unauthorized" with WWW-Authenticate (RFC 7617), as for any broker route',
      options: { authorization: null },
      status: 401,
    },
    {
      reason: 'a token Kumo does not know',
      options: { authorization: `Basic ${Buffer.from('broker:kumo_nope_nope').toString('base64')}` },
      status: 401,
    },
    {
      reason: 'a valid token that is not narrowed to one project (the admin token) cannot say which project',
      options: { authorization: 'admin' },
      status: 403,
    },
    {
      reason: '"the broker SHOULD reject requests without X-Broker-API-Version with 412 Precondition Failed"',
      options: { version: null },
      status: 412,
    },
    { reason: 'a version older than this broker speaks: 412', options: { version: '2.12' }, status: 412 },
    { reason: 'another major version: 412', options: { version: '3.0' }, status: 412 },
    {
      reason: 'X-Broker-API-Originating-Identity must be "platform base64(JSON)"',
      options: { headers: { 'x-broker-api-originating-identity': 'cloudfoundry not-base64-json' } },
      status: 400,
    },
  ];
  it.each(cases)('$reason', async ({ options, status }) => {
    const sent =
      options.authorization === 'admin' ? { ...options, authorization: `Bearer ${t.token}` } : options;
    const res = await osb.call('GET', '/v2/catalog', undefined, sent);
    expect(res.status).toBe(status);
    expect(typeof res.body.description).toBe('string');
    if (status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Basic/);
  });

  it('refuses every broker route without credentials (the broker authenticates all of them itself)', async () => {
    const routes = t.kumo.app.routes.filter((r) => r.path.startsWith('/osb/') && r.method !== 'ALL');
    expect(routes.length).toBeGreaterThanOrEqual(9);
    for (const route of routes) {
      const url = route.path
        .replace('/osb', '')
        .replace(':instance_id', INSTANCE)
        .replace(':binding_id', '7c1d4f3e-5b2a-4e8d-9c6f-0a1b2c3d4e5f');
      const res = await osb.call(route.method, url, undefined, { authorization: null });
      expect(res.status, `${route.method} ${route.path}`).toBe(401);
    }
  });

  it('takes the credential as basic auth password or as a bearer token, and records the originating identity', async () => {
    expect((await osb.call('GET', '/v2/catalog')).status).toBe(200);
    expect(
      (await osb.call('GET', '/v2/catalog', undefined, { authorization: `Bearer ${osb.token}` })).status,
    ).toBe(200);
    const identity = Buffer.from(JSON.stringify({ user_id: 'cf-user-683' })).toString('base64');
    const res = await osb.call('PUT', `${path('audited')}?accepts_incomplete=true`, provision(), {
      headers: { 'x-broker-api-originating-identity': `cloudfoundry ${identity}` },
    });
    expect(res.status).toBe(202);
    const audit = (await (await t.request('/v1/audit?org=acme&kind=Database')).json()) as {
      items: Array<{ actor: string; source?: string; action: string }>;
    };
    const entry = audit.items.find((e) => e.action === 'create');
    expect(entry?.actor).toBe('service:acme/osb-broker');
    expect(entry?.source).toContain('cf-user-683');
  });
});

describe('GET /v2/catalog', () => {
  it('lists one service per engine and one plan per Kumo plan, with ids derived from their names', async () => {
    const first = await osb.call('GET', '/v2/catalog');
    expect(first.status).toBe(200);
    const services = first.body.services as Array<Record<string, any>>;
    const engines = (
      (await (await t.request('/v1/engines')).json()) as {
        items: Array<{ engine: string; plans: Array<{ name: string }> }>;
      }
    ).items;
    expect(services.map((s) => s.name).sort()).toEqual(engines.map((e) => e.engine).sort());
    for (const service of services) {
      expect(service.id).toBe(serviceIdOf(service.name));
      expect(service.bindable).toBe(true);
      expect(service.plans.map((p: { id: string; name: string }) => p.id)).toEqual(
        service.plans.map((p: { name: string }) => planIdOf(service.name, p.name)),
      );
    }
    expect((await osb.call('GET', '/v2/catalog')).body).toEqual(first.body);
    expect(uuidV5('kumo.dev/engine/postgres')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
});

describe('provisioning, polling, updating and fetching an instance', () => {
  const refusals = [
    {
      reason:
        '"422 … if the Service Broker only supports asynchronous provisioning … and the request did not include ?accepts_incomplete=true" (AsyncRequired)',
      url: () => path('sync-only'),
      body: () => provision(),
      status: 422,
      error: 'AsyncRequired',
    },
    {
      reason: '"400 Bad Request: the request is malformed or missing mandatory data": no plan_id',
      url: () => `${path('no-plan')}?accepts_incomplete=true`,
      body: () => ({ service_id: ids.serviceId }),
      status: 400,
    },
    {
      reason: 'a plan_id the catalog does not have: 400',
      url: () => `${path('bad-plan')}?accepts_incomplete=true`,
      body: () => ({ ...provision(), plan_id: 'no-such-plan' }),
      status: 400,
    },
    {
      reason: 'parameters the Database schema refuses: 400 naming the field',
      url: () => `${path('bad-params')}?accepts_incomplete=true`,
      body: () => provision({ storageGB: 'big', acl: [{ cidr: 'nowhere' }] }),
      status: 400,
      description: /parameters\.storageGB/,
    },
    {
      reason: 'a parameter the engine catalog refuses: 400 with its message',
      url: () => `${path('bad-engine-param')}?accepts_incomplete=true`,
      body: () => provision({ parameters: { max_connections: 1 } }),
      status: 400,
      description: /max_connections/,
    },
  ];
  it.each(refusals)('$reason', async ({ url, body, status, error, description }) => {
    const res = await osb.call('PUT', url(), body());
    expect(res.status).toBe(status);
    if (error) expect(res.body.error).toBe(error);
    expect(res.body.description).toMatch(description ?? /./);
  });

  it('refuses a body that is not JSON with 400', async () => {
    const res = await osb.call('PUT', `${path('raw')}?accepts_incomplete=true`, undefined, { raw: '{nope' });
    expect(res.status).toBe(400);
    const nul = await osb.call('PUT', `${path('nul')}?accepts_incomplete=true`, undefined, {
      raw: JSON.stringify(provision({ parameters: { application_name: 'a\u0000b' } })),
    });
    expect(nul.status, 'text PostgreSQL cannot store is refused, not a 500').toBe(400);
  });

  it('provisions asynchronously and answers each re-provision as the specification says', async () => {
    const first = await osb.call('PUT', `${path()}?accepts_incomplete=true`, provision());
    expect(first, '"202 Accepted … provisioning is in progress"').toMatchObject({
      status: 202,
      body: { operation: 'provision' },
    });
    const again = await osb.call('PUT', `${path()}?accepts_incomplete=true`, provision());
    expect(
      again.status,
      '"a re-sent PUT request MUST return a 202 Accepted … if … not yet fully provisioned"',
    ).toBe(202);
    const different = await osb.call('PUT', `${path()}?accepts_incomplete=true`, {
      ...provision(),
      plan_id: ids.mediumId,
    });
    expect(different.status, '"409 Conflict … same id already exists … but with different attributes"').toBe(
      409,
    );
    expect(typeof different.body.description).toBe('string');

    expect(await state(osb, `${path()}/last_operation?operation=provision`)).toBe('in progress');
    await until(osb, `${path()}/last_operation?${query()}&operation=provision`, 'succeeded');
    const done = await osb.call('PUT', `${path()}?accepts_incomplete=true`, provision());
    expect(
      done,
      '"200 OK … already exists, is fully provisioned, and the requested parameters are identical"',
    ).toMatchObject({
      status: 200,
      body: {},
    });

    const fetched = await osb.call('GET', path());
    expect(fetched.status).toBe(200);
    expect(fetched.body).toMatchObject({
      service_id: ids.serviceId,
      plan_id: ids.planId,
      parameters: { version: '15' },
    });
  }, 120_000);

  it('keeps one broker’s instances from another org’s broker', async () => {
    expect(await state(other, `${path()}/last_operation`)).toBe('gone');
    expect((await other.call('GET', path())).status).toBe(404);
    const res = await other.call('DELETE', `${path()}?${query()}&accepts_incomplete=true`);
    expect(res.status, 'not theirs: as if it did not exist').toBe(410);
    expect(await state(osb, `${path()}/last_operation`)).toBe('succeeded');
  });

  it('updates the plan asynchronously; an update that changes nothing is done at once', async () => {
    const same = await osb.call('PATCH', path(), { service_id: ids.serviceId, plan_id: ids.planId });
    expect(same, 'nothing to do: 200 {}').toMatchObject({ status: 200, body: {} });
    const sync = await osb.call('PATCH', path(), { service_id: ids.serviceId, plan_id: ids.mediumId });
    expect(sync.status).toBe(422);
    expect(sync.body.error).toBe('AsyncRequired');
    const immutable = await osb.call('PATCH', `${path()}?accepts_incomplete=true`, {
      service_id: ids.serviceId,
      parameters: { version: '16' },
    });
    expect(immutable.status, 'a version cannot change in place: 400').toBe(400);
    const noService = await osb.call('PATCH', `${path()}?accepts_incomplete=true`, { plan_id: ids.mediumId });
    expect(noService.status, 'service_id is required: 400').toBe(400);
    const unknown = await osb.call('PATCH', `${path('nobody')}?accepts_incomplete=true`, {
      service_id: ids.serviceId,
      plan_id: ids.mediumId,
    });
    expect(unknown.status).toBe(404);

    const changed = await osb.call('PATCH', `${path()}?accepts_incomplete=true`, {
      service_id: ids.serviceId,
      plan_id: ids.mediumId,
      previous_values: { plan_id: ids.planId },
    });
    expect(changed).toMatchObject({ status: 202, body: { operation: 'update' } });
    await until(osb, `${path()}/last_operation?operation=update`, 'succeeded');
    expect((await osb.call('GET', path())).body.plan_id).toBe(ids.mediumId);
  }, 120_000);
});

describe('binding and unbinding', () => {
  const BINDING = 'e0a1b2c3-0000-4000-8000-000000000001';
  const bind = (parameters?: Record<string, unknown>) => ({
    service_id: ids.serviceId,
    plan_id: ids.mediumId,
    bind_resource: { app_guid: 'app-1' },
    ...(parameters ? { parameters } : {}),
  });

  it('refuses a bind without its ids (400), to an unknown instance (404), or with bad parameters (400)', async () => {
    expect((await osb.call('PUT', bindingPath(BINDING), { service_id: ids.serviceId })).status).toBe(400);
    expect((await osb.call('PUT', bindingPath(BINDING, 'nobody'), bind())).status).toBe(404);
    expect((await osb.call('PUT', bindingPath(BINDING), bind({ access: 'root' }))).status).toBe(400);
  });

  it('binds synchronously (201), answers an identical bind with 200 and a different one with 409', async () => {
    const created = await osb.call('PUT', bindingPath(BINDING), bind());
    expect(created.status, '"201 Created … as a result of this request"').toBe(201);
    const credentials = created.body.credentials as Record<string, unknown>;
    expect(credentials).toMatchObject({
      database: expect.stringMatching(/^osb-/),
      username: expect.stringMatching(/^u_bind-/),
    });
    expect(typeof credentials.password).toBe('string');
    const again = await osb.call('PUT', bindingPath(BINDING), bind());
    expect(again.status, '"200 OK … already exists and the requested parameters are identical"').toBe(200);
    expect((again.body.credentials as Record<string, unknown>).password).toBe(credentials.password);
    const different = await osb.call('PUT', bindingPath(BINDING), bind({ access: 'read-only' }));
    expect(different.status, '"409 Conflict … same id … but with different parameters"').toBe(409);
    const fetched = await osb.call('GET', bindingPath(BINDING));
    expect(fetched.status).toBe(200);
    expect(fetched.body.parameters).toEqual({ access: 'read-write' });
  }, 60_000);

  it('binds asynchronously when asked: 202, then last_operation, then the binding can be fetched', async () => {
    const binding = 'e0a1b2c3-0000-4000-8000-000000000002';
    const accepted = await osb.call(
      'PUT',
      `${bindingPath(binding)}?accepts_incomplete=true`,
      bind({ access: 'read-only' }),
    );
    expect(accepted).toMatchObject({ status: 202, body: { operation: 'bind' } });
    expect(accepted.body.credentials, '"credentials MUST NOT be returned in this response"').toBeUndefined();
    await until(osb, `${bindingPath(binding)}/last_operation?operation=bind`, 'succeeded');
    expect((await osb.call('GET', bindingPath(binding))).body.parameters).toEqual({ access: 'read-only' });
    const removed = await osb.call('DELETE', `${bindingPath(binding)}?${query()}&accepts_incomplete=true`);
    expect(removed).toMatchObject({ status: 202, body: { operation: 'unbind' } });
    await until(osb, `${bindingPath(binding)}/last_operation?operation=unbind`, 'gone');
  }, 60_000);

  it('unbinds: 400 without service_id and plan_id, 200 once the login is gone, 410 for a binding that is not there', async () => {
    expect((await osb.call('DELETE', bindingPath(BINDING))).status).toBe(400);
    expect(
      (await other.call('DELETE', `${bindingPath(BINDING)}?${query()}`)).status,
      'another org: 410',
    ).toBe(410);
    const removed = await osb.call('DELETE', `${bindingPath(BINDING)}?${query()}`);
    expect(removed).toMatchObject({ status: 200, body: {} });
    const again = await osb.call('DELETE', `${bindingPath(BINDING)}?${query()}`);
    expect(again, '"410 Gone … if the Service Binding does not exist"').toMatchObject({
      status: 410,
      body: {},
    });
    expect((await osb.call('GET', bindingPath(BINDING))).status).toBe(404);
    expect(await state(osb, `${bindingPath(BINDING)}/last_operation`)).toBe('gone');
  }, 60_000);
});

describe('deprovisioning', () => {
  it('needs service_id and plan_id (400) and accepts_incomplete (422), answers 410 for an unknown instance, else 202 until gone', async () => {
    expect((await osb.call('DELETE', `${path()}?accepts_incomplete=true`)).status).toBe(400);
    const sync = await osb.call('DELETE', `${path()}?${query()}`);
    expect(sync.status).toBe(422);
    expect(sync.body.error).toBe('AsyncRequired');
    expect(await osb.call('DELETE', `${path('never-was')}?${query()}&accepts_incomplete=true`)).toMatchObject(
      {
        status: 410,
        body: {},
      },
    );
    const bound = await osb.call('PUT', bindingPath('left-behind'), {
      service_id: ids.serviceId,
      plan_id: ids.mediumId,
    });
    expect(bound.status).toBe(201);
    const started = await osb.call('DELETE', `${path()}?${query()}&accepts_incomplete=true`);
    expect(started).toMatchObject({ status: 202, body: { operation: 'deprovision' } });
    await until(osb, `${path()}/last_operation?operation=deprovision`, 'gone');
    const users = (await (await t.request('/v1/projects/broker/databaseusers')).json()) as {
      items: unknown[];
    };
    expect(users.items, 'a binding the platform did not remove goes with its instance').toEqual([]);
  }, 120_000);
});
