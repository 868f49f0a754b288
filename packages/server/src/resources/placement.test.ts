import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type TestKumo, startTestKumo } from '../testing/test-kumo.js';

/**
 * Placement through the API. Target "local" is served by the test Kumo's real in-process agent.
 * Targets b and c have no real agent: the test itself acts as their agents through the real agent
 * API (their own agent tokens, a lease, and the Target status an agent reports — engines, capacity,
 * Ready). Nothing runs the databases placed there; placement only reads what those agents report.
 */

const MIB = 1024 * 1024;
/** Far more than this host has, so that b and c, not local, win "most memory left". */
const HUGE = 1024 * 1024 * MIB;
const SMALL_PLAN_BYTES = 256 * MIB;

let t: TestKumo;
const agents: Record<string, { token: string; fence: number }> = {};

const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json();

async function op(path: string, method: string, body?: unknown): Promise<any> {
  const res = await t.request(path, { method, ...(body === undefined ? {} : { json: body }) });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

function asAgent(target: string, rest: string, init: RequestInit & { json?: unknown } = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${agents[target]!.token}`);
  if (agents[target]!.fence) headers.set('x-kumo-fence', String(agents[target]!.fence));
  return t.request(`/v1/agent/targets/${target}${rest}`, { ...init, headers });
}

/** Reports the target as its agent would: Ready, postgres 15, and this capacity. */
async function report(target: string, capacity: { memoryBytes: number; freePorts?: number }) {
  for (let attempt = 0; attempt < 10; attempt++) {
    const current = await json(asAgent(target, `/resource?kind=Target&project=&name=${target}`));
    const now = new Date().toISOString();
    const res = await asAgent(target, '/status', {
      method: 'PUT',
      json: {
        key: { kind: 'Target', project: '', name: target },
        resourceVersion: current.metadata.resourceVersion,
        status: {
          phase: 'Ready',
          agent: { id: `agent-${target}`, version: 'test', lastHeartbeat: now, fence: agents[target]!.fence },
          engines: [{ engine: 'postgres', versions: ['15'] }],
          capacity: {
            cpus: 2,
            memoryBytes: capacity.memoryBytes,
            diskFreeBytes: 100 * 1024 * MIB,
            freePorts: capacity.freePorts ?? 10,
            instances: 0,
          },
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'AgentConnected',
              message: 'test agent',
              lastTransitionTime: now,
            },
          ],
        },
      },
    });
    if (res.status === 200) return;
    // The health check may have written "no agent yet" in between: read again.
    if (res.status !== 412) throw new Error(`reporting ${target}: ${res.status} ${await res.text()}`);
  }
  throw new Error(`reporting ${target}: the status kept changing`);
}

let serial = 0;
/** Creates a database in project shop; resolves with the response. */
function createDatabase(spec: Record<string, unknown>, name = `db-${++serial}`) {
  return t.request('/v1/projects/shop/databases', {
    method: 'POST',
    json: {
      metadata: { name },
      spec: { engine: 'postgres', version: '15', plan: 'small', storageGB: 1, ...spec },
    },
  });
}

async function placedOn(spec: Record<string, unknown>): Promise<string> {
  const res = await createDatabase(spec);
  if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
  return (await json(res)).spec.target;
}

async function refused(spec: Record<string, unknown>): Promise<{ detail: string; errors: Array<any> }> {
  const res = await createDatabase(spec);
  expect(res.status, JSON.stringify(spec)).toBe(422);
  return json(res);
}

beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
  await op('/v1/orgs', 'POST', { metadata: { name: 'acme' }, spec: {} });
  await op('/v1/projects', 'POST', { metadata: { name: 'shop' }, spec: { org: 'acme' } });
  for (const [target, zone] of [
    ['b', 'x'],
    ['c', 'y'],
  ] as const) {
    await op('/v1/targets', 'POST', {
      metadata: { name: target, labels: { zone } },
      spec: { driver: 'local' },
    });
    agents[target] = { token: (await op(`/v1/targets/${target}/agent-tokens`, 'POST')).token, fence: 0 };
    const lease = await json(
      asAgent(target, '/lease', { method: 'PUT', json: { holder: `agent-${target}`, ttlMs: 600_000 } }),
    );
    agents[target]!.fence = lease.fence;
    await report(target, { memoryBytes: HUGE });
  }
});
afterAll(() => t?.stop());

describe('placement', () => {
  it('spreads: two databases without a selector go to the two emptiest targets in turn', async () => {
    // b and c are equal and empty (b wins the tie by name); after one small plan on b, c has more left.
    expect(await placedOn({})).toBe('b');
    expect(await placedOn({})).toBe('c');
  });

  it('places a database on the target whose labels match its selector, and records it in spec.target', async () => {
    const res = await createDatabase({ targetSelector: { zone: 'x' } }, 'zoned');
    expect(res.status).toBe(201);
    expect((await json(res)).spec).toMatchObject({ target: 'b', targetSelector: { zone: 'x' } });
    expect((await op('/v1/projects/shop/databases/zoned', 'GET')).spec.target).toBe('b');
  });

  it('keeps the recorded target when a replace leaves it out', async () => {
    const res = await t.request('/v1/projects/shop/databases/zoned', {
      method: 'PUT',
      json: {
        metadata: { name: 'zoned' },
        spec: {
          engine: 'postgres',
          version: '15',
          plan: 'small',
          storageGB: 2,
          targetSelector: { zone: 'x' },
        },
      },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await json(res)).spec).toMatchObject({ target: 'b', storageGB: 2 });
    const patched = await t.request('/v1/projects/shop/databases/zoned', {
      method: 'PATCH',
      json: { spec: { storageGB: 3 } },
    });
    expect(patched.status).toBe(200);
    expect((await json(patched)).spec).toMatchObject({ target: 'b', storageGB: 3 });
  });

  it('puts nothing new on a cordoned target, and says so', async () => {
    await op('/v1/targets/b', 'PATCH', { spec: { unschedulable: true } });
    try {
      const bySelector = await refused({ targetSelector: { zone: 'x' } });
      expect(bySelector.errors).toEqual([
        expect.objectContaining({
          field: 'spec.targetSelector',
          message: expect.stringContaining('b: cordoned'),
        }),
      ]);
      const named = await refused({ target: 'b' });
      expect(named.errors).toEqual([
        expect.objectContaining({ field: 'spec.target', message: expect.stringContaining('cordoned') }),
      ]);
      // What is already there stays there.
      expect((await op('/v1/projects/shop/databases/zoned', 'GET')).spec.target).toBe('b');
      // Without a selector, placement goes elsewhere.
      expect(await placedOn({})).not.toBe('b');
    } finally {
      await op('/v1/targets/b', 'PATCH', { spec: { unschedulable: false } });
    }
    expect(await placedOn({ targetSelector: { zone: 'x' } })).toBe('b');
  });

  it('refuses a version no Ready target runs, naming the field', async () => {
    const nowhere = await refused({ version: '9' });
    expect(nowhere.errors).toEqual([expect.objectContaining({ field: 'spec.version' })]);
    // A named target is held to the engines its agent reported.
    const onB = await refused({ version: '16', target: 'b' });
    expect(onB.errors).toEqual([expect.objectContaining({ field: 'spec.version' })]);
  });

  it('does not place a plan on a target without the memory for it', async () => {
    await report('c', { memoryBytes: SMALL_PLAN_BYTES / 2 });
    try {
      const onC = await refused({ targetSelector: { zone: 'y' } });
      expect(onC.errors).toEqual([
        expect.objectContaining({
          field: 'spec.targetSelector',
          message: expect.stringMatching(/c: not enough memory/),
        }),
      ]);
      expect(await placedOn({})).toBe('b');
    } finally {
      await report('c', { memoryBytes: HUGE });
    }
    expect(await placedOn({ targetSelector: { zone: 'y' } })).toBe('c');
  });

  it('does not place on a target without free ports', async () => {
    await report('c', { memoryBytes: HUGE, freePorts: 0 });
    try {
      const onC = await refused({ targetSelector: { zone: 'y' } });
      expect(onC.errors[0].message).toContain('c: no free ports');
    } finally {
      await report('c', { memoryBytes: HUGE });
    }
  });

  it('does not overcommit a target when databases are created at the same time', async () => {
    const { items } = await op('/v1/projects/shop/databases', 'GET');
    const committed = items.filter((d: any) => d.spec.target === 'c').length * SMALL_PLAN_BYTES;
    // Room for one more small plan on c, not two.
    await report('c', { memoryBytes: committed + SMALL_PLAN_BYTES + 44 * MIB });
    try {
      const results = await Promise.all(
        [1, 2, 3].map((i) => createDatabase({ targetSelector: { zone: 'y' } }, `at-once-${i}`)),
      );
      // Placements commit one at a time and check the room again: never 3 x 256 MB where 300 MB are left.
      expect(results.map((r) => r.status).sort()).toEqual([201, 422, 422]);
    } finally {
      await report('c', { memoryBytes: HUGE });
    }
  });

  it('lists the engines of one target, as its agent reported them', async () => {
    const { items } = await op('/v1/engines?target=b', 'GET');
    expect(items.map((e: { engine: string; versions: string[] }) => [e.engine, e.versions])).toEqual([
      ['postgres', ['15']],
    ]);
  });
});
