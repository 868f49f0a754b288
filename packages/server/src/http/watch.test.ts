import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readSse, type SseEvent } from '../testing/sse-client.js';
import { type TestKumo, startTestKumo } from '../testing/test-kumo.js';

let t: TestKumo;
beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
});
afterAll(() => t?.stop());

const auth = () => ({ authorization: `Bearer ${t.token}` });

describe('watch', () => {
  it('delivers every change of many concurrent writers exactly once and in order, across reconnects', async () => {
    const list = (await (await t.request('/v1/orgs?labelSelector=suite=watch')).json()) as any;
    const seen: Array<{ rv: bigint; type: string; name: string }> = [];
    let cursor: string = list.metadata.resourceVersion;
    let stopWatching = false;
    let connection: AbortController | undefined;
    let reconnects = 0;

    // The watcher drops its connection every 40 events and resumes from the last id it saw.
    const watcher = (async () => {
      while (!stopWatching) {
        const abort = new AbortController();
        connection = abort;
        let count = 0;
        await readSse(
          `${t.url}/v1/orgs?watch=true&labelSelector=suite%3Dwatch&resourceVersion=${cursor}`,
          auth(),
          (e: SseEvent) => {
            if (abort.signal.aborted) return;
            const object = JSON.parse(e.data);
            seen.push({ rv: BigInt(e.id!), type: e.event, name: object.metadata.name });
            cursor = e.id!;
            if (++count === 40 || stopWatching) abort.abort();
          },
          abort.signal,
        );
        reconnects++;
      }
    })();

    // 8 writers × 15 orgs, each created, relabelled and changed: 360 writes racing each other and
    // the org controller's status writes.
    const written = new Set<bigint>();
    const writer = async (w: number) => {
      for (let i = 0; i < 15; i++) {
        const name = `w${w}-${i}`;
        const steps: Array<[string, string, unknown]> = [
          ['POST', '/v1/orgs', { metadata: { name, labels: { suite: 'watch' } }, spec: {} }],
          ['PATCH', `/v1/orgs/${name}`, { metadata: { labels: { suite: 'watch', step: 'two' } } }],
          ['PATCH', `/v1/orgs/${name}`, { spec: { displayName: name } }],
        ];
        for (const [method, path, body] of steps) {
          const res = await t.request(path, { method, json: body });
          expect(res.status).toBeLessThan(300);
          written.add(BigInt(((await res.json()) as any).metadata.resourceVersion));
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
    const last = [...written].reduce((a, b) => (a > b ? a : b));
    const deadline = Date.now() + 30_000;
    while (!(seen.length > 0 && seen[seen.length - 1]!.rv >= last) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    stopWatching = true;
    connection?.abort(); // a watcher still waiting for events ends now; any gap shows in the assertions below
    await watcher;

    const rvs = seen.map((s) => s.rv);
    expect(new Set(rvs).size).toBe(rvs.length); // exactly once
    for (let i = 1; i < rvs.length; i++) expect(rvs[i]! > rvs[i - 1]!).toBe(true); // in order
    const missing = [...written].filter((rv) => !rvs.includes(rv));
    expect(missing).toEqual([]); // nothing skipped
    expect(reconnects).toBeGreaterThan(5);
    expect(seen.filter((s) => s.type === 'ADDED')).toHaveLength(120);
  });

  it('sends the current objects as ADDED when no resourceVersion is given, then follows changes', async () => {
    await t.request('/v1/orgs', {
      method: 'POST',
      json: { metadata: { name: 'snap', labels: { suite: 'snap' } }, spec: {} },
    });
    const events: SseEvent[] = [];
    const abort = new AbortController();
    const done = readSse(
      `${t.url}/v1/orgs?watch=true&labelSelector=suite%3Dsnap`,
      auth(),
      (e) => {
        events.push(e);
        if (e.event === 'DELETED') abort.abort();
      },
      abort.signal,
    );
    while (events.length === 0) await new Promise((r) => setTimeout(r, 20));
    await t.request('/v1/orgs/snap', { method: 'PATCH', json: { metadata: { finalizers: [] } } });
    await t.request('/v1/orgs/snap', { method: 'DELETE' });
    await done;
    expect(events[0]!.event).toBe('ADDED');
    expect(events.at(-1)!.event).toBe('DELETED');
    expect(JSON.parse(events.at(-1)!.data).metadata.name).toBe('snap');
  });

  it('answers 410 Gone for a resourceVersion older than the retained history', async () => {
    await t.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'old-news' }, spec: {} } });
    // Compact everything, as the housekeeping would after the retention period.
    const pg = await import('pg');
    const pool = new pg.default.Pool({ connectionString: t.databaseUrl });
    await pool.query("UPDATE changes SET created_at = created_at - interval '2 days'");
    const { ChangeLog } = await import('../store/change-log.js');
    expect(await new ChangeLog(pool).compact(24 * 3600_000)).toBeGreaterThan(0);
    await pool.end();
    const res = await t.request('/v1/orgs?watch=true&resourceVersion=1');
    expect(res.status).toBe(410);
    expect(((await res.json()) as any).detail).toContain('List again');
  });
});
