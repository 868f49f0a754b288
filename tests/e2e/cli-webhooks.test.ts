import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EventStore } from '../../packages/server/src/store/event-store.js';
import { startKumoWithProject } from '../../packages/server/src/testing/database-helpers.js';
import { waitFor } from '../../packages/server/src/testing/wait.js';
import { verifySignature } from '../../packages/server/src/webhooks/webhook-signature.js';

// The real `kumo` command, as a subprocess, against a real running Kumo and a real receiver.
const KUMO = join(import.meta.dirname, '../../packages/cli/bin/kumo.js');
let t: Awaited<ReturnType<typeof startKumoWithProject>>;
let home: string;
let store: pg.Pool;
const received: Array<{ body: string; signature: string; json: any }> = [];
let failing = false;
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString()));
  req.on('end', () => {
    received.push({ body, signature: String(req.headers['kumo-signature']), json: JSON.parse(body) });
    res.writeHead(failing ? 500 : 200).end();
  });
});

beforeAll(async () => {
  t = await startKumoWithProject(inject('pg'), 'shop', {
    env: {
      KUMO_WEBHOOK_RETRY_SECONDS: '0.1',
      KUMO_WEBHOOK_GIVE_UP_SECONDS: '1',
      KUMO_WEBHOOK_ALLOW_PRIVATE: 'true',
    },
  });
  home = await mkdtemp(join(tmpdir(), 'kumo-cli-webhooks-'));
  store = new pg.Pool({ connectionString: t.databaseUrl, max: 1 });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  expect((await kumo(['login', '--url', t.url, '--token', t.token, '--default-project', 'shop'])).code).toBe(
    0,
  );
}, 60_000);
afterAll(async () => {
  receiver.closeAllConnections();
  receiver.close();
  await store?.end();
  await t?.stop();
  await rm(home, { recursive: true, force: true });
});

const env = () => ({ PATH: process.env.PATH!, HOME: home, KUMO_CONFIG: join(home, 'config.json') });

function kumo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [KUMO, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** An event about project shop, as a controller records it. */
async function recordEvent(reason: string, message: string): Promise<void> {
  const project = (await (await t.request('/v1/projects/shop')).json()) as any;
  await new EventStore(store).record(project, 'Warning', reason, message);
}

describe('kumo webhook and kumo events --watch', () => {
  it('creates a webhook, shows its secret once, and the deliveries it signs with it', async () => {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const made = await kumo([
      'webhook',
      'create',
      'ci',
      '--url',
      url,
      '--kind',
      'Project',
      '--type',
      'Event',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const secret = /^\s+(whsec_\S+)$/m.exec(made.stdout)![1]!;
    expect(made.stdout).toContain('webhook/ci created');
    expect((await kumo(['webhook', 'get', 'ci', '-o', 'json'])).stdout).not.toContain(secret);
    expect((await kumo(['webhook', 'list'])).stdout).toMatch(/^ci\s/m);
    const ping = await kumo(['webhook', 'ping', 'ci']);
    expect(ping).toMatchObject({ code: 0, stdout: 'webhook/ci: the receiver answered 200\n' });

    await recordEvent('Hooked', 'sent to ci');
    await expect
      .poll(() => received.some((r) => r.json.event?.reason === 'Hooked'), { timeout: 30_000 })
      .toBe(true);
    const got = received.find((r) => r.json.event?.reason === 'Hooked')!;
    expect(verifySignature(secret, got.body, got.signature)).toBe(true);

    // A receiver that is down for longer than the retry period: Failed, then redelivered by hand.
    failing = true;
    await recordEvent('Missed', 'while the receiver was down');
    const failedId = await waitFor(async () => {
      const log = await kumo(['webhook', 'deliveries', 'ci', '--state', 'Failed', '-o', 'json']);
      return (JSON.parse(log.stdout) as Array<{ id: string }>)[0]?.id;
    }, 'the delivery to be given up');
    const table = await kumo(['webhook', 'deliveries', 'ci']);
    expect(table.stdout).toMatch(
      new RegExp(`^${failedId}\\s+Event\\s+project/shop\\s+Failed\\s+\\d+\\s+HTTP 500`, 'm'),
    );
    failing = false;
    const again = await kumo(['webhook', 'redeliver', 'ci', failedId]);
    expect(again.stdout).toBe(`delivery ${failedId} of webhook/ci is queued again\n`);
    await expect
      .poll(
        async () =>
          JSON.parse((await kumo(['webhook', 'deliveries', 'ci', '-o', 'json'])).stdout).find(
            (d: any) => d.id === failedId,
          )?.state,
        { timeout: 30_000 },
      )
      .toBe('Succeeded');

    const rotated = await kumo(['webhook', 'rotate-secret', 'ci']);
    expect(rotated.stdout).toMatch(/version 2 \(shown once\):\n {2}whsec_\S+\n$/);
    expect((await kumo(['webhook', 'delete', 'ci', '--yes'])).stdout).toBe('webhook/ci deleted\n');
  });

  it("streams the project's events as they happen: kumo events -p shop --watch", async () => {
    await recordEvent('Earlier', 'before the watch');
    const child = spawn(process.execPath, [KUMO, 'events', '-p', 'shop', '--watch', '-o', 'json'], {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const events = () =>
      out
        .split('\n')
        .filter(Boolean)
        .map(
          (line) => JSON.parse(line) as { reason: string; involvedObject: { kind: string; name: string } },
        );
    try {
      // First the latest events, then the new ones.
      await expect.poll(() => events().some((e) => e.reason === 'Earlier'), { timeout: 30_000 }).toBe(true);
      await recordEvent('Live', 'while watching');
      await expect.poll(() => events().some((e) => e.reason === 'Live'), { timeout: 30_000 }).toBe(true);
      expect(events().find((e) => e.reason === 'Live')!.involvedObject).toMatchObject({
        kind: 'Project',
        name: 'shop',
      });
    } finally {
      child.kill('SIGINT');
    }
    // A table: the header and the latest, then a row per new event; one resource's only.
    const table = spawn(process.execPath, [KUMO, 'events', 'project', 'shop', '--watch'], {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    table.stdout.on('data', (d: Buffer) => (text += d.toString()));
    try {
      await expect.poll(() => text, { timeout: 30_000 }).toMatch(/^LAST SEEN\s+TYPE\s+REASON\s+OBJECT/);
      await recordEvent('Tabled', 'as a row');
      await expect
        .poll(() => text, { timeout: 30_000 })
        .toMatch(/\n\S+\s+Warning\s+Tabled\s+project\/shop\s+1\s+as a row\n/);
    } finally {
      table.kill('SIGINT');
    }
    const listed = await kumo(['events', '-p', 'shop']);
    expect(listed.stdout).toMatch(/^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+COUNT\s+MESSAGE$/m);
    expect(listed.stdout).toMatch(/Warning\s+Live\s+project\/shop\s+1\s+while watching/);
  });
});
