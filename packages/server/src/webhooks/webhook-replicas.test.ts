import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DatabaseTestKumo, startKumoWithProject } from '../testing/database-helpers.js';
import { parkedDatabase } from '../testing/tenants.js';
import { type TestKumo, startTestKumo } from '../testing/test-kumo.js';
import { waitFor } from '../testing/wait.js';

/**
 * Two control planes on one store, both fanning out and sending: every delivery is sent once (no
 * replica takes one another is sending), and each resource's changes arrive in order.
 */
const received: Array<{ id: string; name: string; rv: number; label: string | undefined }> = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString()));
  req.on('end', () => {
    const json = JSON.parse(body);
    received.push({
      id: json.id,
      name: json.resource.name,
      rv: Number(json.object.metadata.resourceVersion),
      label: json.object.metadata.labels.step,
    });
    // Answers take a moment, so that both replicas have sends in flight at once.
    setTimeout(() => res.writeHead(200).end(), Math.random() * 20);
  });
});
let first: DatabaseTestKumo;
let second: TestKumo;
let secondDir: string;

beforeAll(async () => {
  const env = {
    KUMO_MASTER_KEY: randomBytes(32).toString('base64'),
    KUMO_WEBHOOK_ALLOW_PRIVATE: 'true',
    KUMO_WEBHOOK_RETRY_SECONDS: '0.1',
  };
  first = await startKumoWithProject(inject('pg'), 'shop', { env });
  secondDir = await mkdtemp(join(tmpdir(), 'kumo-test-replica-'));
  await writeFile(join(secondDir, 'admin-token'), `${first.token}\n`, { mode: 0o600 });
  second = await startTestKumo(inject('pg'), { databaseUrl: first.databaseUrl, dataDir: secondDir, env });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
}, 90_000);

afterAll(async () => {
  receiver.closeAllConnections();
  receiver.close();
  await second?.stop();
  await first?.stop();
  if (secondDir) await rm(secondDir, { recursive: true, force: true });
});

async function api(kumo: TestKumo, path: string, method = 'GET', json?: unknown): Promise<any> {
  const res = await kumo.request(path, { method, ...(json === undefined ? {} : { json }) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

describe('webhooks on two control-plane replicas', () => {
  it('send each delivery once, in order per resource', async () => {
    await api(first, '/v1/targets', 'POST', { metadata: { name: 'parked' }, spec: { driver: 'kubernetes' } });
    const names = ['a', 'b', 'c'];
    for (const name of names)
      await api(first, '/v1/projects/shop/databases', 'POST', { metadata: { name }, spec: parkedDatabase() });
    await api(second, '/v1/projects/shop/webhooks', 'POST', {
      metadata: { name: 'both' },
      spec: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`, kinds: ['Database'] },
    });
    await api(first, '/v1/projects/shop/webhooks/both/secret/rotate', 'POST');
    // Writes through both replicas, interleaved across the databases.
    for (let step = 1; step <= 5; step++) {
      for (const [i, name] of names.entries()) {
        await api(i % 2 === 0 ? first : second, `/v1/projects/shop/databases/${name}`, 'PATCH', {
          metadata: { labels: { step: String(step) } },
        });
      }
    }
    await waitFor(
      async () =>
        names.every((n) => received.some((r) => r.name === n && r.label === '5')) ? true : undefined,
      'the last change of every database',
    );
    const log = await waitFor(async () => {
      const items = (await api(first, '/v1/projects/shop/webhooks/both/deliveries?limit=500')).items;
      return items.every((d: any) => d.state === 'Succeeded') ? items : undefined;
    }, 'every delivery to be done');
    expect(log.every((d: any) => d.attempts === 1)).toBe(true);
    const ids = received.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length); // none sent twice
    expect([...ids].sort()).toEqual(log.map((d: any) => d.id).sort());
    for (const name of names) {
      const seen = received.filter((r) => r.name === name);
      expect(seen.map((r) => r.rv)).toEqual(seen.map((r) => r.rv).sort((x, y) => x - y));
      expect(seen.filter((r) => r.label).map((r) => r.label)).toEqual(
        expect.arrayContaining(['1', '2', '3', '4', '5']),
      );
    }
  });
});
