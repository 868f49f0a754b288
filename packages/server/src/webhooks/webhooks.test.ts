import { type IncomingHttpHeaders, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DatabaseTestKumo, startKumoWithProject } from '../testing/database-helpers.js';
import { readSse } from '../testing/sse-client.js';
import { waitFor } from '../testing/wait.js';
import { EventStore } from '../store/event-store.js';
import { verifySignature } from './webhook-signature.js';

/** What a receiver was sent. */
interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
  answered: number;
}

/**
 * A real HTTP receiver on 127.0.0.1. `answer` decides each request's status (it may also keep the
 * request hanging by returning undefined); every request is recorded in arrival order.
 */
async function startReceiver(answer: (r: Received, n: number) => number | undefined = () => 200) {
  const received: Received[] = [];
  const hanging: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const r: Received = { headers: req.headers, body, json: JSON.parse(body), answered: 0 };
      received.push(r);
      const status = answer(r, received.length);
      if (status === undefined) return void hanging.push(res);
      r.answered = status;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'receiver says no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    /** Only what it answered 2xx to. */
    accepted: () => received.filter((r) => r.answered >= 200 && r.answered < 300),
    close: () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

let t: DatabaseTestKumo;
let store: pg.Pool;
const receivers: Receiver[] = [];

beforeAll(async () => {
  t = await startKumoWithProject(inject('pg'), 'shop', {
    // Retries after 0.1 s, doubling; given up after 5 s; a receiver has 2 s to answer.
    env: {
      KUMO_WEBHOOK_RETRY_SECONDS: '0.1',
      KUMO_WEBHOOK_GIVE_UP_SECONDS: '5',
      KUMO_WEBHOOK_TIMEOUT_SECONDS: '2',
      // Receivers on loopback: for tests only (Kumo refuses private receivers by default).
      KUMO_WEBHOOK_ALLOW_PRIVATE: 'true',
    },
  });
  await api('/v1/orgs', 'POST', { metadata: { name: 'globex' }, spec: {} });
  await api('/v1/projects', 'POST', { metadata: { name: 'globex-web' }, spec: { org: 'globex' } });
  store = new pg.Pool({ connectionString: t.databaseUrl, max: 2 });
}, 60_000);

afterAll(async () => {
  for (const r of receivers) await r.close();
  await store?.end();
  await t?.stop();
});

async function api(path: string, method = 'GET', json?: unknown): Promise<any> {
  const res = await t.request(path, { method, ...(json === undefined ? {} : { json }) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function receiver(answer?: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const r = await startReceiver(answer);
  receivers.push(r);
  return r;
}

/** A webhook of project shop (or another) to the receiver, with its secret. */
async function webhook(
  name: string,
  url: string,
  spec: Record<string, unknown> = {},
  project = 'shop',
): Promise<string> {
  await api(`/v1/projects/${project}/webhooks`, 'POST', { metadata: { name }, spec: { url, ...spec } });
  return (await api(`/v1/projects/${project}/webhooks/${name}/secret/rotate`, 'POST')).secret;
}

/** A change of project `name` (a label), which its webhooks are sent as MODIFIED. */
const touch = (project: string, value: string) =>
  api(`/v1/projects/${project}`, 'PATCH', { metadata: { labels: { touched: value } } });

const deliveries = (name: string, project = 'shop'): Promise<any[]> =>
  api(`/v1/projects/${project}/webhooks/${name}/deliveries`).then((l) => l.items);

/** The deliveries about project `project` whose label `touched` is one of `values`, in arrival order. */
const touches = (r: Receiver, list = r.received) =>
  list.filter((x) => x.json.resource.kind === 'Project' && x.json.object?.metadata.labels.touched);

describe('webhooks', () => {
  it('signs every delivery (Kumo-Signature: t=…,v1=HMAC-SHA256 of "t.body") so the receiver can verify it', async () => {
    const r = await receiver();
    const secret = await webhook('signed', r.url, { kinds: ['Project'] });
    await touch('shop', 'signed');
    const got = await waitFor(
      async () => touches(r).find((x) => x.json.object.metadata.labels.touched === 'signed'),
      'the signed delivery',
    );
    const header = String(got.headers['kumo-signature']);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(secret, got.body, header)).toBe(true);
    expect(verifySignature(`${secret}x`, got.body, header)).toBe(false);
    expect(verifySignature(secret, got.body.replace('signed', 'signee'), header)).toBe(false);
    const t0 = Number(/t=(\d+)/.exec(header)![1]);
    expect(verifySignature(secret, got.body, header, { nowSeconds: t0 + 3600 })).toBe(false);
    expect(got.json).toMatchObject({
      type: 'MODIFIED',
      webhook: { project: 'shop', name: 'signed' },
      resource: { kind: 'Project', project: 'shop', name: 'shop' },
      object: { kind: 'Project', metadata: { name: 'shop' } },
    });
    expect(got.headers['kumo-delivery']).toBe(got.json.id);
    expect(got.headers['content-type']).toBe('application/json');

    // The secret is shown by the rotation only: the webhook shows its version and a hint.
    const stored = await api('/v1/projects/shop/webhooks/signed');
    expect(JSON.stringify(stored)).not.toContain(secret);
    const ready = await waitFor(async () => {
      const w = await api('/v1/projects/shop/webhooks/signed');
      return w.status.phase === 'Ready' ? w : undefined;
    }, 'the webhook to be Ready');
    expect(ready.status.secret).toMatchObject({ version: 1, hint: `${secret.slice(0, 10)}…` });
    expect(JSON.stringify(ready)).not.toContain(secret);
  });

  it('retries a receiver that fails with backoff until it answers 2xx, with the same id and body', async () => {
    const r = await receiver((_x, n) => (n <= 3 ? 500 : 200));
    await webhook('flaky', r.url, { kinds: ['Project'], types: ['MODIFIED'] });
    await touch('shop', 'flaky');
    const log = await waitFor(
      async () => (await deliveries('flaky')).find((d) => d.state === 'Succeeded'),
      'the delivery to succeed',
    );
    expect(log).toMatchObject({ attempts: 4, lastStatus: 200, lastError: null, type: 'MODIFIED' });
    const tries = r.received.filter((x) => x.json.id === log.id);
    expect(tries.map((x) => x.answered)).toEqual([500, 500, 500, 200]);
    expect(new Set(tries.map((x) => x.body)).size).toBe(1);
  });

  it('delivers the changes of one resource in order, holding later ones while an earlier one is retried', async () => {
    // The first delivery fails four times; four more changes are made meanwhile.
    const r = await receiver((_x, n) => (n <= 4 ? 503 : 200));
    await webhook('ordered', r.url, { kinds: ['Project'], types: ['MODIFIED'] });
    for (const n of ['1', '2', '3', '4', '5']) await touch('shop', `order-${n}`);
    await waitFor(
      async () => (touches(r, r.accepted()).length >= 5 ? true : undefined),
      'all five changes to arrive',
    );
    const seen = touches(r).map((x) => Number(x.json.object.metadata.resourceVersion));
    // Arrival order (retries included) never goes back: nothing later overtook the failing one.
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(touches(r, r.accepted()).map((x) => x.json.object.metadata.labels.touched)).toEqual([
      'order-1',
      'order-2',
      'order-3',
      'order-4',
      'order-5',
    ]);
  });

  it("sends nothing about another org's (or another project's) resources", async () => {
    const r = await receiver();
    await webhook('mine', r.url);
    await touch('globex-web', 'foreign');
    await events().record(await api('/v1/projects/globex-web'), 'Warning', 'Foreign', 'not yours');
    // The fan-out goes through the change log in order: once a later change of shop arrived,
    // globex's would have been queued before it.
    await touch('shop', 'after-foreign');
    await waitFor(
      async () => touches(r).find((x) => x.json.object.metadata.labels.touched === 'after-foreign'),
      "shop's change",
    );
    const all = await deliveries('mine');
    expect(all.length).toBeGreaterThan(0);
    expect(all.filter((d) => d.resource.project !== 'shop' || d.resource.name === 'globex-web')).toEqual([]);
    expect(r.received.filter((x) => x.body.includes('globex'))).toEqual([]);
  });

  it('keeps a dead receiver from holding up writes or other webhooks', async () => {
    const dead = await receiver(() => undefined); // never answers
    const alive = await receiver();
    await webhook('dead', dead.url, { kinds: ['Project'] });
    await webhook('alive', alive.url, { kinds: ['Project'] });
    await touch('shop', 'while-dead');
    await waitFor(
      async () => touches(alive).find((x) => x.json.object.metadata.labels.touched === 'while-dead'),
      'the live receiver to get the change',
    );
    await waitFor(async () => (dead.received.length > 0 ? true : undefined), 'the dead receiver to be tried');
    await touch('shop', 'still-writing'); // writes go on while the dead one hangs
    await waitFor(
      async () => touches(alive).find((x) => x.json.object.metadata.labels.touched === 'still-writing'),
      'the next change',
    );
    const failed = await waitFor(
      async () => (await deliveries('dead')).find((d) => d.attempts >= 1 && d.lastError),
      'the timeout to be recorded',
    );
    expect(failed.lastError).toMatch(/no answer within 2000 ms/);
    await api('/v1/projects/shop/webhooks/dead', 'DELETE');
  });

  it('gives up after the retry period (Failed in the log) and sends it again on redeliver', async () => {
    let down = true;
    const r = await receiver(() => (down ? 500 : 204));
    await webhook('given-up', r.url, { kinds: ['Project'], types: ['MODIFIED'] });
    await touch('shop', 'give-up');
    const failed = await waitFor(
      async () => (await deliveries('given-up')).find((d) => d.state === 'Failed'),
      'the delivery to be given up',
      20_000,
    );
    expect(failed.attempts).toBeGreaterThan(2);
    expect(failed.lastStatus).toBe(500);
    expect(failed.lastError).toBe('HTTP 500: receiver says no');
    expect(failed.completedAt).not.toBeNull();
    down = false;
    const again = await api(`/v1/projects/shop/webhooks/given-up/deliveries/${failed.id}/redeliver`, 'POST');
    expect(again.state).toBe('Pending');
    const done = await waitFor(
      async () => (await deliveries('given-up')).find((d) => d.id === failed.id && d.state === 'Succeeded'),
      'the redelivery',
    );
    expect(done).toMatchObject({ lastStatus: 204, attempts: failed.attempts + 1 });
    const missing = await t.request('/v1/projects/shop/webhooks/given-up/deliveries/999999999/redeliver', {
      method: 'POST',
    });
    expect(missing.status).toBe(404);
  });

  it('pings a receiver on demand, signed, and says how it answered', async () => {
    const r = await receiver((x) => (x.json.type === 'Ping' ? 204 : 200));
    const secret = await webhook('pinged', r.url, { kinds: ['Org'] });
    expect(await api('/v1/projects/shop/webhooks/pinged/ping', 'POST')).toEqual({
      ok: true,
      status: 204,
      error: null,
    });
    const ping = r.received.find((x) => x.json.type === 'Ping')!;
    expect(ping.json).toMatchObject({ id: expect.stringMatching(/^ping-/), webhook: { name: 'pinged' } });
    expect(verifySignature(secret, ping.body, String(ping.headers['kumo-signature']))).toBe(true);
    expect(await deliveries('pinged')).toEqual([]); // not in the log
    const closed = await receiver(() => 500);
    await api('/v1/projects/shop/webhooks/pinged', 'PATCH', { spec: { url: closed.url } });
    expect(await api('/v1/projects/shop/webhooks/pinged/ping', 'POST')).toEqual({
      ok: false,
      status: 500,
      error: 'HTTP 500: receiver says no',
    });
    await api('/v1/projects/shop/webhooks', 'POST', {
      metadata: { name: 'no-secret' },
      spec: { url: r.url },
    });
    const refused = await t.request('/v1/projects/shop/webhooks/no-secret/ping', { method: 'POST' });
    expect(refused.status).toBe(409);
    await api('/v1/projects/shop/webhooks/no-secret', 'DELETE');
  });

  it('holds deliveries until the webhook has a secret, then sends them', async () => {
    const r = await receiver();
    await api('/v1/projects/shop/webhooks', 'POST', {
      metadata: { name: 'unsigned' },
      spec: { url: r.url, kinds: ['Project'] },
    });
    await touch('shop', 'before-secret');
    const pending = await waitFor(
      async () => (await deliveries('unsigned')).find((d) => d.state === 'Pending'),
      'a pending delivery',
    );
    expect(pending.attempts).toBe(0);
    const status = await waitFor(async () => {
      const w = await api('/v1/projects/shop/webhooks/unsigned');
      return w.status.conditions ? w.status : undefined;
    }, 'the webhook status');
    expect(status).toMatchObject({ phase: 'Pending', conditions: [{ reason: 'NoSecret' }] });
    expect(r.received).toEqual([]);
    const { secret } = await api('/v1/projects/shop/webhooks/unsigned/secret/rotate', 'POST');
    const got = await waitFor(
      async () => touches(r).find((x) => x.json.object.metadata.labels.touched === 'before-secret'),
      'the held delivery',
    );
    expect(verifySignature(secret, got.body, String(got.headers['kumo-signature']))).toBe(true);
  });

  it('sends events about the resources of its project, and refuses kinds that do not exist', async () => {
    const r = await receiver();
    await webhook('events', r.url, { types: ['Event'] });
    await events().record(await api('/v1/projects/shop'), 'Warning', 'DiskFull', 'the disk is full');
    const got = await waitFor(
      async () => r.received.find((x) => x.json.type === 'Event' && x.json.event.reason === 'DiskFull'),
      'the event',
    );
    expect(got.json).toMatchObject({
      resource: { kind: 'Project', project: 'shop', name: 'shop' },
      event: { type: 'Warning', reason: 'DiskFull', message: 'the disk is full', count: 1 },
    });
    const bad = await t.request('/v1/projects/shop/webhooks', {
      method: 'POST',
      json: { metadata: { name: 'typo' }, spec: { url: r.url, kinds: ['Databse'] } },
    });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as any).errors[0].field).toBe('spec.kinds.0');
  });

  it("streams a project's events (GET …/event-log?watch=true) and lists the latest", async () => {
    const abort = new AbortController();
    const streamed: any[] = [];
    const reading = readSse(
      `${t.url}/v1/projects/shop/event-log?watch=true`,
      { authorization: `Bearer ${t.token}` },
      (e) => streamed.push({ event: e.event, ...JSON.parse(e.data) }),
      abort.signal,
    );
    // The stream starts at the present: keep recording until it has shown one.
    await waitFor(async () => {
      await events().record(await api('/v1/projects/shop'), 'Normal', 'Streamed', 'seen live');
      return streamed.find((e) => e.reason === 'Streamed');
    }, 'the streamed event');
    abort.abort();
    await reading;
    expect(streamed.find((e) => e.reason === 'Streamed')).toMatchObject({
      event: 'Normal',
      involvedObject: { kind: 'Project', name: 'shop' },
    });
    const latest = await api('/v1/projects/shop/event-log?limit=5');
    expect(latest.items.map((e: any) => e.reason)).toContain('Streamed');
    expect(latest.items.every((e: any) => e.involvedObject.project === 'shop')).toBe(true);
    const foreign = await api('/v1/projects/globex-web/event-log');
    expect(foreign.items.map((e: any) => e.reason)).toContain('Foreign');
    expect(foreign.items.map((e: any) => e.reason)).not.toContain('Streamed');
  });
});

function events(): EventStore {
  return new EventStore(store);
}
