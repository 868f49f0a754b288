import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { type TestNatsServer, startNatsServer } from '../../packages/server/src/testing/nats-server.js';
import { createTestDatabase } from '../../packages/server/src/testing/test-postgres.js';
import { type KumoChild, killProcessesUnder, startKumoChild } from '../support/kumo-child.js';

/**
 * Two `kumo up` on one external store (the defect issue 14 started from: both acted as the agent
 * of "local" and the second started a duplicate, empty PostgreSQL). Now they share the control
 * plane, and only the holder of the target's lease acts as its agent: the other waits, and when it
 * takes over it never starts a second, empty server for a database whose server is elsewhere.
 */
const LEASE_SECONDS = '3';
const children: KumoChild[] = [];
let dir: string;
let nats: TestNatsServer | undefined;

afterAll(async () => {
  for (const c of children) c.child.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  if (dir) {
    killProcessesUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
  await nats?.stop();
});

async function api(kumo: KumoChild, path: string, init: RequestInit & { json?: unknown } = {}): Promise<any> {
  const { json, ...rest } = init;
  const res = await fetch(`${kumo.url}${path}`, {
    ...rest,
    headers: { authorization: `Bearer ${kumo.token}`, 'content-type': 'application/json' },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
  const body = await res.json();
  if (res.status >= 300)
    throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  explain: () => Promise<string> = async () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n${await explain().catch(String)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The instance directories of managed databases under one `kumo up`'s data directory. */
async function instancesUnder(dataDir: string): Promise<string[]> {
  return (await readdir(join(dataDir, 'databases')).catch(() => [] as string[])).filter(
    (d) => !d.startsWith('.'),
  );
}

describe('two kumo up on one external store', () => {
  it('act as the agent of "local" one at a time, and never start a database twice', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kumo-shared-store-'));
    await chmod(dir, 0o711);
    const url = await createTestDatabase(inject('pg'));
    // Several processes on one store hear of changes through NATS: the in-process bus of one does
    // not reach the agent in the other (without it, only the periodic resync would).
    nats = await startNatsServer();
    // One master key for both: the credentials in the store are sealed with it.
    const env = {
      KUMO_DATABASE_URL: url,
      KUMO_AGENT_LEASE_SECONDS: LEASE_SECONDS,
      KUMO_NATS_URL: nats.url,
      KUMO_MASTER_KEY: randomBytes(32).toString('base64'),
    };
    const start = (n: number, ports: string) =>
      startKumoChild(['--data-dir', join(dir, `kumo${n}`), '--port', '0', '--db-ports', ports], { env });
    const first = await start(1, '32570-32579');
    children.push(first);
    // The admin token is the first one's (the store holds it): the operator copies its file over.
    await mkdir(join(dir, 'kumo2'), { recursive: true });
    await writeFile(join(dir, 'kumo2', 'admin-token'), first.token + '\n', { mode: 0o600 });
    const second = await start(2, '32580-32589');
    children.push(second);

    await api(first, '/v1/orgs', { method: 'POST', json: { metadata: { name: 'acme' }, spec: {} } });
    await api(second, '/v1/projects', {
      method: 'POST',
      json: { metadata: { name: 'shop' }, spec: { org: 'acme' } },
    });
    await api(second, '/v1/projects/shop/databases', {
      method: 'POST',
      json: { metadata: { name: 'orders' }, spec: { engine: 'postgres', version: '15', plan: 'small' } },
    });
    const ready = await until('orders Ready', async () => {
      const db = await api(first, '/v1/projects/shop/databases/orders');
      return db.status.phase === 'Ready' ? db : undefined;
    });
    expect(ready.spec.target).toBe('local');
    // Exactly one server, made by the agent that holds the lease: the first to start.
    expect(await instancesUnder(join(dir, 'kumo1'))).toHaveLength(1);
    expect(await instancesUnder(join(dir, 'kumo2'))).toEqual([]);
    expect(second.output()).toContain('is served by agent');

    // The first goes away for good: the second takes the lease over once it expired, and finds
    // the database's server is on the first's host. It says so instead of starting an empty one.
    first.child.kill('SIGKILL');
    await first.exited;
    const elsewhere = await until(
      'orders InstanceElsewhere',
      async () => {
        const db = await api(second, '/v1/projects/shop/databases/orders');
        const readyCondition = db.status.conditions?.find((c: { type: string }) => c.type === 'Ready');
        return readyCondition?.reason === 'InstanceElsewhere' ? db : undefined;
      },
      60_000,
      async () =>
        JSON.stringify((await api(second, '/v1/projects/shop/databases/orders')).status) +
        '\n' +
        second.output().slice(-3000),
    );
    expect(elsewhere.status.phase).toBe('Error');
    expect(await instancesUnder(join(dir, 'kumo2'))).toEqual([]);
    const target = await api(second, '/v1/targets/local');
    expect(target.status.phase).toBe('Ready');
    expect(target.status.agent.fence).toBeGreaterThan(1);
  }, 180_000);
});
