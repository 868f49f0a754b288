import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { PROBLEM_TYPES } from '@kumo/api';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../config.js';
import { Kumo } from '../kumo.js';
import { ensureServiceUser } from '../system/service-user.js';
import { childrenOf, postmasterPidOf, signal } from '../testing/postmaster.js';
import { type SseEvent, readSse } from '../testing/sse-client.js';
import { hostSearchPath } from '../testing/test-env.js';
import { startTestKumo } from '../testing/test-kumo.js';
import { waitFor } from '../testing/wait.js';
import { EmbeddedPostgres } from './embedded-postgres.js';
import { findPostgresBinaries } from './postgres-binaries.js';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o711);
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A logger whose lines the test reads: what an operator would see in `kumo up`'s log. */
function capturedLogger() {
  const lines: Array<{ msg: string }> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  return { logs: () => lines.map((l) => l.msg), logger };
}

type Call = (path: string, init?: RequestInit & { json?: unknown }) => Promise<Response>;

/** The requests a user makes while the store is away: every one must be a retryable 503, never a 500. */
async function expectUnavailable(call: Call): Promise<void> {
  const requests: Array<[string, RequestInit & { json?: unknown }]> = [
    ['/v1/orgs', {}],
    ['/v1/orgs/before', {}],
    ['/v1/orgs', { method: 'POST', json: { metadata: { name: 'during' }, spec: {} } }],
    ['/v1/orgs?watch=true', { headers: { accept: 'text/event-stream' } }],
    ['/readyz', {}],
  ];
  for (const [path, init] of requests) {
    const res = await call(path, init);
    const what = `${init.method ?? 'GET'} ${path}`;
    expect(res.status, what).toBe(503);
    expect(res.headers.get('content-type'), what).toBe('application/problem+json');
    expect(Number(res.headers.get('retry-after')), what).toBeGreaterThan(0);
    const problem = (await res.json()) as { type: string; status: number; detail: string };
    expect(problem, what).toMatchObject({ type: PROBLEM_TYPES.unavailable, status: 503 });
    expect(problem.detail, what).toMatch(/retry/i);
  }
  const live = await call('/livez');
  expect(live.status).toBe(200);
  expect(await live.json()).toEqual({ status: 'ok' });
}

async function orgReady(call: Call, name: string): Promise<void> {
  await waitFor(async () => {
    const org = (await (await call(`/v1/orgs/${name}`)).json()) as { status?: { phase?: string } };
    return org.status?.phase === 'Ready' ? org : undefined;
  }, `org ${name} Ready`);
}

describe('the store goes away', () => {
  it('kumo restarts its embedded store after a kill -9 of the postmaster; meanwhile the API answers 503; afterwards everything carries on', async () => {
    const dataDir = join(await tempDir('kumo-store-restart-'), 'data');
    const base = 21000 + 50 * Math.floor(Math.random() * 200);
    const config = resolveConfig(
      { dataDir, port: 0, logLevel: 'silent', dbPorts: `${base}-${base + 49}`, rateLimit: 100_000 },
      { PATH: hostSearchPath() },
    );
    expect(config.store.mode).toBe('embedded');
    const { logs, logger } = capturedLogger();
    const kumo = await Kumo.start(
      {
        ...config,
        // No token recheck during the test: a watch open across the outage must survive it.
        http: { ...config.http, streamRecheckMs: 600_000 },
      },
      logger,
    );
    cleanup.push(() => kumo.stop());
    const headers = { authorization: `Bearer ${kumo.adminToken.token}` };
    const call: Call = (path, init = {}) => {
      const { json, ...rest } = init;
      return fetch(`${kumo.url}${path}`, {
        ...rest,
        headers: {
          ...headers,
          ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(rest.headers as Record<string, string>),
        },
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      });
    };

    expect(
      (await call('/v1/orgs', { method: 'POST', json: { metadata: { name: 'before' }, spec: {} } })).status,
    ).toBe(201);
    const events: SseEvent[] = [];
    const abort = new AbortController();
    const watching = readSse(`${kumo.url}/v1/orgs?watch=true`, headers, (e) => events.push(e), abort.signal);
    cleanup.push(() => abort.abort());
    await waitFor(
      async () => (events.some((e) => e.event === 'ADDED') ? true : undefined),
      'the watch to start',
    );

    // Kill the postmaster. One of its processes is held (SIGSTOP) so that it cannot exit and the
    // old server's shared memory stays in use: PostgreSQL refuses to start again until it is gone,
    // which keeps the store down for as long as the test looks.
    const pgdata = join(dataDir, 'store', 'pgdata');
    const postmaster = await postmasterPidOf(pgdata);
    const held = (await childrenOf(postmaster)).find((c) => c.cmdline.includes('checkpointer'));
    expect(held, 'the checkpointer of the embedded store').toBeDefined();
    signal(held!.pid, 'SIGSTOP');
    cleanup.push(() => signal(held!.pid, 'SIGKILL'));
    signal(postmaster, 'SIGKILL');

    await waitFor(async () => ((await call('/readyz')).status === 503 ? true : undefined), '/readyz 503');
    await expectUnavailable(call);
    await waitFor(
      async () => (logs().includes('restarting the embedded store failed; retrying') ? true : undefined),
      'a failed restart attempt in the log',
    );
    expect(logs()).toContain('the embedded store (PostgreSQL) stopped unexpectedly; restarting it');
    await expectUnavailable(call); // still down, still 503: the held process blocks every attempt

    // The old server's last process goes: the next attempt starts the store.
    signal(held!.pid, 'SIGKILL');
    await waitFor(
      async () => ((await call('/readyz')).status === 200 ? true : undefined),
      '/readyz 200',
      60_000,
    );
    expect(logs()).toContain('the embedded store is running again');
    expect(await postmasterPidOf(pgdata)).not.toBe(postmaster);

    const created = await call('/v1/orgs', {
      method: 'POST',
      json: { metadata: { name: 'after' }, spec: {} },
    });
    expect(created.status).toBe(201);
    // The watch opened before the outage carries on, and the relay and the controllers do too.
    await waitFor(
      async () =>
        events.some((e) => e.event === 'ADDED' && JSON.parse(e.data).metadata.name === 'after')
          ? true
          : undefined,
      'the watch opened before the outage to see the org created after it',
    );
    expect(events.filter((e) => e.event === 'ERROR')).toEqual([]);
    await orgReady(call, 'after');
    const list = (await (await call('/v1/orgs')).json()) as { items: Array<{ metadata: { name: string } }> };
    expect(list.items.map((o) => o.metadata.name)).toEqual(['after', 'before']);
    abort.abort();
    await watching;
  });

  it('an external store is not restarted by Kumo, but while it is away the API answers 503 the same way', async () => {
    const dir = await tempDir('kumo-external-store-');
    const external = new EmbeddedPostgres({
      dir,
      binaries: findPostgresBinaries({ path: hostSearchPath() }),
      user: ensureServiceUser('kumo'),
      database: 'postgres',
    });
    const connection = await external.start();
    cleanup.push(() => external.stop());
    const t = await startTestKumo(connection);
    cleanup.push(() => t.stop());
    expect(
      (await t.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'before' }, spec: {} } }))
        .status,
    ).toBe(201);

    await external.stop();
    await waitFor(
      async () => ((await t.request('/readyz')).status === 503 ? true : undefined),
      '/readyz 503',
    );
    await expectUnavailable(t.request);
    expect(await external.isRunning()).toBe(false);

    await external.start();
    await waitFor(
      async () => ((await t.request('/readyz')).status === 200 ? true : undefined),
      '/readyz 200',
    );
    expect(
      (await t.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'after' }, spec: {} } }))
        .status,
    ).toBe(201);
    await orgReady(t.request, 'after');
  });
});
