import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '../../packages/server/src/testing/test-postgres.js';
import { waitFor } from '../../packages/server/src/testing/wait.js';
import { verifySignature } from '../../packages/server/src/webhooks/webhook-signature.js';
import { type KumoChild, killProcessesUnder, startKumoChild } from '../support/kumo-child.js';

/**
 * At least once, for real: `kumo up` is killed (SIGKILL) while a delivery is in flight, before it
 * could record the answer. The next `kumo up` on the same store sends it again once its claim
 * lapsed, with the same id and body.
 */
const children: KumoChild[] = [];
let dir: string;
const received: Array<{ body: string; signature: string; id: string }> = [];
const hanging: ServerResponse[] = [];
/** The change the test makes and kills Kumo while it is being delivered. */
const crashed = (body: string) => JSON.parse(body).object?.metadata?.labels?.crash === 'now';
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString()));
  req.on('end', () => {
    received.push({ body, signature: String(req.headers['kumo-signature']), id: JSON.parse(body).id });
    // The first delivery of the labelled change is never answered: its sender dies waiting. Others
    // (the project's own status writes, which may come first) are answered at once.
    if (crashed(body) && hanging.length === 0) hanging.push(res);
    else res.writeHead(200).end();
  });
});

afterAll(async () => {
  for (const c of children) c.child.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  for (const res of hanging) res.destroy();
  receiver.close();
  if (dir) {
    killProcessesUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
});

async function api(kumo: KumoChild, path: string, method = 'GET', json?: unknown): Promise<any> {
  const res = await fetch(`${kumo.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${kumo.token}`, 'content-type': 'application/json' },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
  const body = await res.json();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

describe('a webhook delivery when Kumo is killed mid-send', () => {
  it('is sent again by the next Kumo on the store, with the same id and body', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kumo-webhook-crash-'));
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const env = {
      KUMO_DATABASE_URL: await createTestDatabase(inject('pg')),
      KUMO_MASTER_KEY: randomBytes(32).toString('base64'),
      KUMO_WEBHOOK_ALLOW_PRIVATE: 'true',
      KUMO_WEBHOOK_TIMEOUT_SECONDS: '2',
      KUMO_WEBHOOK_RETRY_SECONDS: '0.1',
    };
    // No database is created: the ports are never used.
    const start = (n: number) =>
      startKumoChild(['--data-dir', join(dir, `kumo${n}`), '--port', '0', '--db-ports', '32590-32599'], {
        env,
      });
    const first = await start(1);
    children.push(first);
    await api(first, '/v1/orgs', 'POST', { metadata: { name: 'acme' }, spec: {} });
    await api(first, '/v1/projects', 'POST', { metadata: { name: 'shop' }, spec: { org: 'acme' } });
    await api(first, '/v1/projects/shop/webhooks', 'POST', {
      metadata: { name: 'ci' },
      spec: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`, kinds: ['Project'] },
    });
    const { secret } = await api(first, '/v1/projects/shop/webhooks/ci/secret/rotate', 'POST');
    await api(first, '/v1/projects/shop', 'PATCH', { metadata: { labels: { crash: 'now' } } });
    const firstTry = await waitFor(async () => received.find((r) => crashed(r.body)), 'the first attempt');
    first.child.kill('SIGKILL');
    await first.exited;

    // The store holds the admin token; the next Kumo reads it from its own data directory.
    await mkdir(join(dir, 'kumo2'), { recursive: true });
    await writeFile(join(dir, 'kumo2', 'admin-token'), `${first.token}\n`, { mode: 0o600 });
    const second = await start(2);
    children.push(second);
    const done = await waitFor(
      async () =>
        (await api(second, '/v1/projects/shop/webhooks/ci/deliveries')).items.find(
          (d: any) => d.id === firstTry.id && d.state === 'Succeeded',
        ),
      'the delivery to be sent again',
      60_000,
    );
    expect(done.attempts).toBe(2);
    const tries = received.filter((r) => r.id === firstTry.id);
    expect(tries).toHaveLength(2);
    expect(tries[1]!.body).toBe(tries[0]!.body);
    expect(tries.every((r) => verifySignature(secret, r.body, r.signature))).toBe(true);
    expect(JSON.parse(tries[0]!.body).object.metadata.labels).toEqual({ crash: 'now' });
  }, 120_000);
});
