import { type Condition, findCondition } from '@kumo/api';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type TestKumo, startTestKumo } from '../testing/test-kumo.js';
import { waitFor } from '../testing/wait.js';

/**
 * The health check of a running Kumo (every 2 s). Target b has no real agent: the test acts as
 * its agent through the real agent API (its agent token, its lease, the status it writes).
 */

let t: TestKumo;
let agentToken: string;
let fence = 0;
const HOLDER = 'agent-b';
const DB = '/v1/projects/shop/databases/orders';
const dbKey = { kind: 'Database', project: 'shop', name: 'orders' };
const targetKey = { kind: 'Target', project: '', name: 'b' };

const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json();

async function op(path: string, method = 'GET', body?: unknown): Promise<any> {
  const res = await t.request(path, { method, ...(body === undefined ? {} : { json: body }) });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function agent(method: string, rest: string, body?: unknown): Promise<any> {
  const res = await t.request(`/v1/agent/targets/b${rest}`, {
    method,
    headers: { authorization: `Bearer ${agentToken}`, 'x-kumo-fence': String(fence) },
    ...(body === undefined ? {} : { json: body }),
  });
  if (res.status >= 300) throw new Error(`${method} ${rest}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function takeLease(ttlMs: number): Promise<void> {
  fence = (await agent('PUT', '/lease', { holder: HOLDER, ttlMs })).fence;
}

const ready = (reason: string, message: string): Condition => ({
  type: 'Ready',
  status: 'True',
  reason,
  message,
  lastTransitionTime: new Date().toISOString(),
});

/** Writes a status as the agent does: computed from the version just read. */
async function writeStatus(key: typeof dbKey, status: (current: any) => Record<string, unknown>) {
  const query = new URLSearchParams(key);
  const current = await agent('GET', `/resource?${query}`);
  return agent('PUT', '/status', {
    key,
    resourceVersion: current.metadata.resourceVersion,
    status: status(current),
    observedGeneration: current.metadata.generation,
  });
}

/** What the agent reports while it serves b: Ready, and the database it runs Ready. */
async function reportReady(message: string) {
  await writeStatus(targetKey, () => ({
    phase: 'Ready',
    agent: { id: HOLDER, version: 'test', lastHeartbeat: new Date().toISOString(), fence },
    engines: [{ engine: 'postgres', versions: ['15'] }],
    capacity: {
      cpus: 2,
      memoryBytes: 8 * 1024 ** 3,
      diskFreeBytes: 100 * 1024 ** 3,
      freePorts: 10,
      instances: 1,
    },
    conditions: [ready('AgentConnected', message)],
  }));
  await writeStatus(dbKey, () => ({
    phase: 'Ready',
    endpoint: { host: '127.0.0.1', port: 25432 },
    conditions: [ready('Running', message)],
  }));
}

const readyOf = (resource: { status: { conditions?: Condition[] } }) =>
  findCondition(resource.status.conditions, 'Ready');

beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
  await op('/v1/targets', 'POST', {
    metadata: { name: 'b', labels: { zone: 'x' } },
    spec: { driver: 'local' },
  });
  agentToken = (await op('/v1/targets/b/agent-tokens', 'POST')).token;
  await op('/v1/orgs', 'POST', { metadata: { name: 'acme' }, spec: {} });
  await op('/v1/projects', 'POST', { metadata: { name: 'shop' }, spec: { org: 'acme' } });
  await op('/v1/projects/shop/databases', 'POST', {
    metadata: { name: 'orders' },
    spec: { engine: 'postgres', version: '15', plan: 'small', storageGB: 1, target: 'b' },
  });
});
afterAll(() => t?.stop());

describe('target health', () => {
  it('shows a target no agent has connected for as not Ready (NoAgent)', async () => {
    await op('/v1/targets', 'POST', { metadata: { name: 'lonely' }, spec: { driver: 'local' } });
    const target = await waitFor(
      async () => {
        const target = await op('/v1/targets/lonely');
        return readyOf(target) ? target : undefined;
      },
      'the health check to report target lonely',
      20_000,
    );
    expect(target.status.phase).toBe('Pending');
    expect(readyOf(target)).toMatchObject({ status: 'False', reason: 'NoAgent' });
    expect(readyOf(target)!.message).toContain('kumo agent --target lonely');
  });

  it('shows a target whose agent stopped renewing as lost, and its databases as unobservable', async () => {
    await takeLease(60_000);
    await reportReady('serving');
    const before = await op(DB);
    expect(before.status.phase).toBe('Ready');
    expect(readyOf(before)).toMatchObject({ status: 'True', reason: 'Running' });
    expect(readyOf(await op('/v1/targets/b'))).toMatchObject({ status: 'True' });

    // The agent's last renewal: 2 s, and then it goes silent (its host died, say).
    await agent('POST', '/lease/renew', { holder: HOLDER, fence, ttlMs: 2000 });

    const target = await waitFor(
      async () => {
        const target = await op('/v1/targets/b');
        return target.status.phase === 'Error' ? target : undefined;
      },
      'target b to show its agent lost',
      15_000,
    );
    expect(readyOf(target)).toMatchObject({ status: 'False', reason: 'AgentLost' });
    expect(readyOf(target)!.message).toContain(HOLDER);

    const db = await waitFor(
      async () => {
        const db = await op(DB);
        return db.status.phase === 'Unknown' ? db : undefined;
      },
      'database orders to show its target unreachable',
      15_000,
    );
    expect(readyOf(db)).toMatchObject({ status: 'Unknown', reason: 'TargetUnreachable' });
    expect(readyOf(db)!.message).toContain('target b');
    // Nothing was observed of the spec since: the observed generation stays what the agent last saw.
    expect(db.status.observedGeneration).toBe(before.status.observedGeneration);
    expect(db.metadata.generation).toBe(before.metadata.generation);
    // What the agent last saw stays readable.
    expect(db.status.endpoint).toEqual(before.status.endpoint);

    // Nothing new is placed on a target whose agent is lost.
    const placed = await t.request('/v1/projects/shop/databases', {
      method: 'POST',
      json: {
        metadata: { name: 'more' },
        spec: {
          engine: 'postgres',
          version: '15',
          plan: 'small',
          storageGB: 1,
          targetSelector: { zone: 'x' },
        },
      },
    });
    expect(placed.status).toBe(422);
    expect((await json(placed)).errors[0].message).toContain('b: its agent is not connected');
  });

  it('leaves the status of an agent that came back alone', async () => {
    const lostFence = fence;
    // The same agent, restarted: it takes its lease back at once with the next fence.
    await takeLease(60_000);
    expect(fence).toBe(lostFence + 1);
    await reportReady('serving again');
    const back = await op(DB);
    expect(back.status.phase).toBe('Ready');

    // Several health-check passes later, nothing has overwritten it.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const db = await op(DB);
    expect(db.status.phase).toBe('Ready');
    expect(readyOf(db)).toMatchObject({ status: 'True', reason: 'Running', message: 'serving again' });
    const target = await op('/v1/targets/b');
    expect(target.status.phase).toBe('Ready');
    expect(readyOf(target)).toMatchObject({ status: 'True', reason: 'AgentConnected' });
  });
});
