import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { type DatabaseTestKumo, startKumoWithProject } from '../testing/database-helpers.js';
import { queryFrom } from '../testing/pg-connect.js';
import { waitFor } from '../testing/wait.js';
import { type BrokerClient, brokerClient } from './osb-test-client.js';

// What a platform (Cloud Foundry, Kubernetes' service catalog) does with the broker, end to end,
// against a real PostgreSQL: the credentials of a binding work until it is unbound, and only then stop.
let t: DatabaseTestKumo;
let osb: BrokerClient;

beforeAll(async () => {
  t = await startKumoWithProject(inject('pg'), 'market');
  osb = await brokerClient(t, 'acme', 'market');
}, 60_000);
afterAll(async () => {
  await t?.stop();
});

it('provisions, binds, connects with the binding, unbinds (refused after) and deprovisions', async () => {
  const { serviceId, planId } = await osb.plan('postgres', 'small');
  const instance = '7a1e0c5e-0d7b-4f0e-9a55-6f1a0c3f2b10';
  const binding = 'b3c2b1a0-1111-4222-8333-944455556666';

  const provisioned = await osb.call('PUT', `/v2/service_instances/${instance}?accepts_incomplete=true`, {
    service_id: serviceId,
    plan_id: planId,
    organization_guid: 'org-guid',
    space_guid: 'space-guid',
    parameters: { version: '15', acl: [{ cidr: '127.0.0.2/32' }] },
  });
  expect(provisioned.status).toBe(202);
  const { operation } = provisioned.body as { operation: string };
  await waitFor(
    async () => {
      const polled = await osb.call(
        'GET',
        `/v2/service_instances/${instance}/last_operation?service_id=${serviceId}&plan_id=${planId}&operation=${operation}`,
      );
      expect(polled.status).toBe(200);
      expect((polled.body as { state: string }).state).not.toBe('failed');
      return (polled.body as { state: string }).state === 'succeeded' ? true : undefined;
    },
    'the provision to succeed',
    90_000,
  );

  const bound = await osb.call('PUT', `/v2/service_instances/${instance}/service_bindings/${binding}`, {
    service_id: serviceId,
    plan_id: planId,
    bind_resource: { app_guid: 'app-guid' },
  });
  expect(bound.status).toBe(201);
  const { credentials } = bound.body as { credentials: { uri: string; username: string } };
  expect(credentials.username).toMatch(/^u_bind-/);
  const rows = await queryFrom(
    credentials.uri,
    '127.0.0.2',
    'SELECT current_user AS who, session_user AS login',
  );
  expect(rows[0]).toMatchObject({ login: credentials.username });

  const unbound = await osb.call(
    'DELETE',
    `/v2/service_instances/${instance}/service_bindings/${binding}?service_id=${serviceId}&plan_id=${planId}`,
  );
  expect(unbound).toMatchObject({ status: 200, body: {} });
  await expect(queryFrom(credentials.uri, '127.0.0.2', 'SELECT 1')).rejects.toThrow(
    /password authentication failed|not permitted to log in/,
  );

  const deprovisioned = await osb.call(
    'DELETE',
    `/v2/service_instances/${instance}?service_id=${serviceId}&plan_id=${planId}&accepts_incomplete=true`,
  );
  expect(deprovisioned).toMatchObject({ status: 202, body: { operation: 'deprovision' } });
  await waitFor(
    async () =>
      (await osb.call('GET', `/v2/service_instances/${instance}/last_operation?operation=deprovision`))
        .status === 410
        ? true
        : undefined,
    'the deprovision to finish (410 Gone)',
    60_000,
  );
}, 180_000);
