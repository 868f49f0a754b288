import { PROBLEM_TYPES } from '@kumo/api';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { HttpAgentClient } from '../agent/http-agent-client.js';
import { LeaseHeldError, LeaseLostError } from '../errors.js';
import { type TestKumo, startTestKumo } from '../testing/test-kumo.js';
import { waitFor } from '../testing/wait.js';

let t: TestKumo;
/** Agent tokens by target. */
const tokens: Record<string, { id: string; token: string }> = {};

const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json();

async function op(path: string, method: string, body?: unknown): Promise<any> {
  const res = await t.request(path, { method, ...(body === undefined ? {} : { json: body }) });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** A request with an agent token (of `target`, or the raw token given). */
function asAgent(
  target: string,
  path: string,
  init: RequestInit & { json?: unknown; fence?: number } = {},
): Promise<Response> {
  const { fence, ...rest } = init;
  const headers = new Headers(rest.headers);
  headers.set('authorization', `Bearer ${tokens[target]?.token ?? target}`);
  if (fence !== undefined) headers.set('x-kumo-fence', String(fence));
  return t.request(path, { ...rest, headers });
}

const agentPath = (target: string, rest: string) => `/v1/agent/targets/${target}${rest}`;
const dbKey = (name: string) => ({ kind: 'Database', project: 'shop', name });

function readyStatus(message: string) {
  return {
    phase: 'Ready',
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'Running',
        message,
        lastTransitionTime: new Date().toISOString(),
      },
    ],
  };
}

/** The database as the agent of `target` reads it (its resourceVersion is what a status write names). */
const readAs = (target: string, name: string) =>
  json(asAgent(target, agentPath(target, `/resource?kind=Database&project=shop&name=${name}`)));

const takeLease = (target: string, holder: string, ttlMs: number) =>
  asAgent(target, agentPath(target, '/lease'), { method: 'PUT', json: { holder, ttlMs } });

const writeStatus = (target: string, fence: number | undefined, name: string, rv: string, status: unknown) =>
  asAgent(target, agentPath(target, '/status'), {
    method: 'PUT',
    json: { key: dbKey(name), resourceVersion: rv, status },
    ...(fence === undefined ? {} : { fence }),
  });

beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
  for (const target of ['b', 'c', 'h']) {
    await op('/v1/targets', 'POST', { metadata: { name: target }, spec: { driver: 'local' } });
    tokens[target] = await op(`/v1/targets/${target}/agent-tokens`, 'POST');
  }
  await op('/v1/orgs', 'POST', { metadata: { name: 'acme' }, spec: {} });
  await op('/v1/projects', 'POST', { metadata: { name: 'shop' }, spec: { org: 'acme' } });
  // An explicit target is taken as named (no agent has reported engines there yet); nothing runs them.
  for (const [name, target] of [
    ['on-b', 'b'],
    ['on-c', 'c'],
    ['on-h', 'h'],
  ])
    await op('/v1/projects/shop/databases', 'POST', {
      metadata: { name },
      spec: { engine: 'postgres', version: '15', plan: 'small', storageGB: 1, target },
    });
});
afterAll(() => t?.stop());

describe('an agent token', () => {
  it('is shown once, for its target', () => {
    expect(tokens.b).toMatchObject({ target: 'b' });
    expect(tokens.b!.token).toMatch(/^kumo_/);
  });

  it('is refused (403) everywhere but its own target’s agent API', async () => {
    for (const path of ['/v1/orgs', '/v1/projects', '/v1/engines', '/v1/projects/shop/databases/on-b']) {
      const res = await asAgent('b', path);
      expect(res.status, path).toBe(403);
      expect((await json(res)).type).toBe(PROBLEM_TYPES.forbidden);
    }
    for (const [method, rest, body] of [
      ['GET', '/keys?kind=Database', undefined],
      ['PUT', '/lease', { holder: 'intruder', ttlMs: 60_000 }],
      ['POST', '/credentials', { project: 'shop', name: 'on-c' }],
    ] as const) {
      const res = await asAgent('b', agentPath('c', rest), {
        method,
        ...(body === undefined ? {} : { json: body }),
      });
      expect(res.status, `${method} ${rest} of c`).toBe(403);
    }
    // The refused lease request took nothing: c's agent takes c's lease.
    const lease = await takeLease('c', 'agent-c', 60_000);
    expect(lease.status).toBe(200);
    expect((await json(lease)).holder).toBe('agent-c');
  });

  it('stops working once revoked (401)', async () => {
    const extra = await op('/v1/targets/b/agent-tokens', 'POST');
    const keys = () =>
      t.request(agentPath('b', '/keys?kind=Database'), {
        headers: { authorization: `Bearer ${extra.token}` },
      });
    expect((await keys()).status).toBe(200);
    await op(`/v1/tokens/${extra.id}`, 'DELETE');
    expect((await keys()).status).toBe(401);
  });
});

describe('what an agent sees of its target', () => {
  it('lists the databases on its target only', async () => {
    const onB = await json(asAgent('b', agentPath('b', '/keys?kind=Database')));
    expect(onB.items).toEqual([dbKey('on-b')]);
    const onC = await json(asAgent('c', agentPath('c', '/keys?kind=Database')));
    expect(onC.items).toEqual([dbKey('on-c')]);
    expect((await json(asAgent('b', agentPath('b', '/keys?kind=Target')))).items).toEqual([
      { kind: 'Target', project: '', name: 'b' },
    ]);
  });

  it('reads a resource on its target, and gets 404 for one elsewhere', async () => {
    expect(await readAs('b', 'on-b')).toMatchObject({ metadata: { name: 'on-b' }, spec: { target: 'b' } });
    const elsewhere = await asAgent('b', agentPath('b', '/resource?kind=Database&project=shop&name=on-c'));
    expect(elsewhere.status).toBe(404);
    const local = await asAgent('b', agentPath('b', '/resource?kind=Target&project=&name=local'));
    expect(local.status).toBe(404);
  });

  it('gets the credentials of a database on its target, and 404 for one elsewhere', async () => {
    const res = await asAgent('b', agentPath('b', '/credentials'), {
      method: 'POST',
      json: { project: 'shop', name: 'on-b' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const creds = await json(res);
    expect(creds.username).toEqual(expect.any(String));
    expect(creds.password.length).toBeGreaterThanOrEqual(16);
    // The same credentials each time (created on first use).
    const again = await json(
      asAgent('b', agentPath('b', '/credentials'), {
        method: 'POST',
        json: { project: 'shop', name: 'on-b' },
      }),
    );
    expect(again).toMatchObject({ username: creds.username, password: creds.password });

    const elsewhere = await asAgent('b', agentPath('b', '/credentials'), {
      method: 'POST',
      json: { project: 'shop', name: 'on-c' },
    });
    expect(elsewhere.status).toBe(404);
    expect(JSON.stringify(await json(elsewhere))).not.toContain('password');
  });

  it("lists, reads and gets the password of the DatabaseUsers of its target's databases only", async () => {
    for (const db of ['on-b', 'on-c'])
      await op('/v1/projects/shop/databaseusers', 'POST', {
        metadata: { name: `${db}-app` },
        spec: { database: db },
      });
    const keys = await json(asAgent('b', agentPath('b', '/keys?kind=DatabaseUser')));
    expect(keys.items).toEqual([{ kind: 'DatabaseUser', project: 'shop', name: 'on-b-app' }]);
    const read = await asAgent('b', agentPath('b', '/resource?kind=DatabaseUser&project=shop&name=on-b-app'));
    expect(read.status).toBe(200);
    const creds = await asAgent('b', agentPath('b', '/credentials'), {
      method: 'POST',
      json: { kind: 'DatabaseUser', project: 'shop', name: 'on-b-app' },
    });
    expect(creds.status).toBe(200);
    const password = (await json(creds)).password;
    const shown = await json(t.request('/v1/projects/shop/databaseusers/on-b-app/credentials'));
    expect(shown.password, 'the password the agent applies is the one users are shown').toBe(password);
    const elsewhere = await asAgent('b', agentPath('b', '/credentials'), {
      method: 'POST',
      json: { kind: 'DatabaseUser', project: 'shop', name: 'on-c-app' },
    });
    expect(elsewhere.status).toBe(404);
  });
});

describe('status writes under the lease', () => {
  let fence: number;
  let staleFence: number;

  it('are refused (409 lease-lost) before the agent holds its lease', async () => {
    const db = await readAs('b', 'on-b');
    for (const attempt of [undefined, 1]) {
      const res = await writeStatus('b', attempt, 'on-b', db.metadata.resourceVersion, readyStatus('early'));
      expect(res.status, `fence ${attempt}`).toBe(409);
      expect((await json(res)).type).toBe(PROBLEM_TYPES.leaseLost);
    }
    const after = await op('/v1/projects/shop/databases/on-b', 'GET');
    expect(after.metadata.resourceVersion).toBe(db.metadata.resourceVersion);
  });

  it('gives the agent its lease with a fence, and refuses another agent meanwhile', async () => {
    const res = await takeLease('b', 'agent-1', 60_000);
    expect(res.status).toBe(200);
    const lease = await json(res);
    expect(lease).toMatchObject({ target: 'b', holder: 'agent-1', fence: expect.any(Number) });
    expect(Date.parse(lease.expiresAt)).toBeGreaterThan(Date.now());
    fence = lease.fence;

    const other = await takeLease('b', 'agent-2', 60_000);
    expect(other.status).toBe(409);
    expect((await json(other)).type).toBe(PROBLEM_TYPES.leaseHeld);
  });

  it('writes status under the current fence, visible to the operator', async () => {
    const db = await readAs('b', 'on-b');
    const res = await writeStatus(
      'b',
      fence,
      'on-b',
      db.metadata.resourceVersion,
      readyStatus('written by b'),
    );
    expect(res.status).toBe(200);
    const seen = await op('/v1/projects/shop/databases/on-b', 'GET');
    expect(seen.status).toMatchObject({
      phase: 'Ready',
      conditions: [{ type: 'Ready', status: 'True', message: 'written by b' }],
    });
  });

  it('refuses a write computed from an old version (412)', async () => {
    const before = await readAs('b', 'on-b');
    const first = await writeStatus('b', fence, 'on-b', before.metadata.resourceVersion, readyStatus('one'));
    expect(first.status).toBe(200);
    const stale = await writeStatus('b', fence, 'on-b', before.metadata.resourceVersion, readyStatus('two'));
    expect(stale.status).toBe(412);
    expect((await json(stale)).type).toBe(PROBLEM_TYPES.preconditionFailed);
    expect((await op('/v1/projects/shop/databases/on-b', 'GET')).status.conditions[0].message).toBe('one');
  });

  it('refuses a status the kind does not allow (422), writing nothing', async () => {
    const before = await readAs('b', 'on-b');
    const res = await writeStatus('b', fence, 'on-b', before.metadata.resourceVersion, {
      ...readyStatus('bad'),
      phase: 'Sleeping',
    });
    // A status the kind's schema refuses is the agent's mistake: 422 naming the field, never a 500.
    expect(res.status).toBe(422);
    const problem = await json(res);
    expect(problem.type).toBe(PROBLEM_TYPES.validation);
    expect(JSON.stringify(problem)).toContain('phase');
    expect((await readAs('b', 'on-b')).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  it('refuses a write under the fence of an agent whose lease another agent took over (409 lease-lost)', async () => {
    // agent-1 restarts with a short lease, then stops renewing it; agent-2 takes over once it expired.
    const short = await json(takeLease('b', 'agent-1', 1000));
    expect(short.fence).toBe(fence + 1);
    const successor = await waitFor(
      async () => {
        const res = await takeLease('b', 'agent-2', 60_000);
        return res.status === 200 ? json(res) : undefined;
      },
      'agent-2 to take over the lease of b',
      15_000,
    );
    expect(successor).toMatchObject({ holder: 'agent-2', fence: short.fence + 1 });

    const before = await op('/v1/projects/shop/databases/on-b', 'GET');
    for (const old of [fence, short.fence]) {
      const res = await writeStatus(
        'b',
        old,
        'on-b',
        before.metadata.resourceVersion,
        readyStatus('stale agent'),
      );
      expect(res.status, `fence ${old}`).toBe(409);
      expect((await json(res)).type).toBe(PROBLEM_TYPES.leaseLost);
    }
    const terminal = await asAgent('b', agentPath('b', '/terminal-error'), {
      method: 'POST',
      fence: short.fence,
      json: { key: dbKey('on-b'), reason: 'DiskFull', message: 'from the old agent' },
    });
    expect(terminal.status).toBe(409);
    expect((await json(terminal)).type).toBe(PROBLEM_TYPES.leaseLost);
    const renew = await asAgent('b', agentPath('b', '/lease/renew'), {
      method: 'POST',
      json: { holder: 'agent-1', fence: short.fence, ttlMs: 60_000 },
    });
    expect(renew.status).toBe(409);
    expect((await json(renew)).type).toBe(PROBLEM_TYPES.leaseLost);
    const after = await op('/v1/projects/shop/databases/on-b', 'GET');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(after.status).toEqual(before.status);

    // The successor writes under its own fence.
    const ok = await writeStatus(
      'b',
      successor.fence,
      'on-b',
      before.metadata.resourceVersion,
      readyStatus('written by agent-2'),
    );
    expect(ok.status).toBe(200);
    staleFence = short.fence;
  });

  it('refuses an event from an agent whose lease was taken over (409 lease-lost), and one without a fence', async () => {
    const event = (fence: number | undefined, message: string) =>
      asAgent('b', agentPath('b', '/events'), {
        method: 'POST',
        json: { key: dbKey('on-b'), type: 'Warning', reason: 'Crashed', message },
        ...(fence === undefined ? {} : { fence }),
      });
    // Events are fenced like every other agent write: an agent that lost its target must not show
    // its events (e.g. "Crashed") on the database its successor serves.
    for (const [fence, message] of [
      [staleFence, 'from the old agent'],
      [undefined, 'from no lease'],
    ] as const) {
      const res = await event(fence, message);
      expect(res.status, `event under fence ${fence}`).toBe(409);
      expect((await json(res)).type).toBe(PROBLEM_TYPES.leaseLost);
    }
    const events = await op('/v1/projects/shop/databases/on-b/events', 'GET');
    expect(events.items.map((e: { reason: string }) => e.reason)).not.toContain('Crashed');
  });
});

describe('HttpAgentClient against a running control plane', () => {
  it('takes the lease, reads, writes status and events, and stops writing once taken over', async () => {
    const client = () => new HttpAgentClient({ apiUrls: [t.url], token: tokens.h!.token, target: 'h' });
    const agent = client();
    const lease = await agent.acquireLease('http-agent', 60_000);
    expect(lease).toMatchObject({ target: 'h', holder: 'http-agent', fence: 1 });
    expect(lease.expiresAt).toBeInstanceOf(Date);

    expect(await agent.listKeys('Database')).toEqual([dbKey('on-h')]);
    const db = await agent.get(dbKey('on-h'));
    expect(db).toMatchObject({ metadata: { name: 'on-h' }, spec: { target: 'h' } });
    expect(await agent.get(dbKey('on-b'))).toBeUndefined();

    const written = await agent.updateStatus(
      dbKey('on-h'),
      (current) => ({ ...current.status, ...readyStatus('via HttpAgentClient') }),
      db!.metadata.generation,
    );
    expect(written?.status).toMatchObject({ phase: 'Ready', observedGeneration: db!.metadata.generation });
    await agent.event(written!, 'Normal', 'Started', 'the server accepts connections');
    const events = await op('/v1/projects/shop/databases/on-h/events', 'GET');
    expect(events.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          type: 'Normal',
          reason: 'Started',
          message: 'the server accepts connections',
        }),
      ]),
    );
    const creds = await agent.credentials(written!);
    expect(creds).toMatchObject({ username: expect.any(String), password: expect.any(String) });

    // Another agent of h waits while the lease runs…
    const successor = client();
    await expect(successor.acquireLease('other-agent', 60_000)).rejects.toBeInstanceOf(LeaseHeldError);
    // …and takes over once the first one (restarted with a short lease) stops renewing.
    await agent.acquireLease('http-agent', 1000);
    await waitFor(
      () => successor.acquireLease('other-agent', 60_000),
      'the other agent to take over h',
      15_000,
    );

    const before = await op('/v1/projects/shop/databases/on-h', 'GET');
    await expect(
      agent.updateStatus(dbKey('on-h'), (current) => ({ ...current.status, ...readyStatus('stale') })),
    ).rejects.toBeInstanceOf(LeaseLostError);
    await expect(agent.renewLease(60_000)).rejects.toBeInstanceOf(LeaseLostError);
    const after = await op('/v1/projects/shop/databases/on-h', 'GET');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(after.status.conditions[0].message).toBe('via HttpAgentClient');
  });
});

describe('deleting a target', () => {
  it('is refused while databases run on it, and revokes its agent tokens once it goes', async () => {
    const refused = await t.request('/v1/targets/c', { method: 'DELETE' });
    expect(refused.status).toBe(409);
    expect((await json(refused)).detail).toContain('shop/on-c');

    await op('/v1/targets', 'POST', { metadata: { name: 'empty' }, spec: { driver: 'local' } });
    tokens.empty = await op('/v1/targets/empty/agent-tokens', 'POST');
    expect((await asAgent('empty', agentPath('empty', '/keys?kind=Database'))).status).toBe(200);
    expect((await t.request('/v1/targets/empty', { method: 'DELETE' })).status).toBeLessThan(300);
    expect((await asAgent('empty', agentPath('empty', '/keys?kind=Database'))).status).toBe(401);
  });
});
