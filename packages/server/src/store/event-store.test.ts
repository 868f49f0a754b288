import { describe, expect, it } from 'vitest';
import { migratedTestStore } from '../testing/test-store.js';
import { EventStore } from './event-store.js';
import { ResourceStore } from './resource-store.js';

const db = migratedTestStore();

describe('EventStore', () => {
  it('merges repeats of an event into one with a count, keeps different ones apart, and forgets a re-created name', async () => {
    const store = new ResourceStore(db.pool);
    const events = new EventStore(db.pool);
    const ctx = { actor: 'test' };
    const org = await store.create('Org', '', { name: 'ev', labels: {}, finalizers: [], spec: {} }, ctx);
    const key = { kind: 'Org', project: '', name: 'ev' };
    await events.record(org, 'Warning', 'Crashed', 'exit code 1');
    await events.record(org, 'Warning', 'Crashed', 'exit code 1');
    await events.record(org, 'Warning', 'Crashed', 'exit code 1');
    await events.record(org, 'Normal', 'Started', 'up');
    const list = await events.list(key, org.metadata.uid);
    expect(list.map((e) => [e.type, e.reason, e.count])).toEqual([
      ['Warning', 'Crashed', 3],
      ['Normal', 'Started', 1],
    ]);
    expect(Date.parse(list[0]!.lastTimestamp)).toBeGreaterThanOrEqual(Date.parse(list[0]!.firstTimestamp));

    await store.delete(key, ctx);
    const again = await store.create('Org', '', { name: 'ev', labels: {}, finalizers: [], spec: {} }, ctx);
    expect(await events.list(key, again.metadata.uid)).toEqual([]);
  });

  it('prunes events of resources gone for a while, and events past the maximum age', async () => {
    const store = new ResourceStore(db.pool);
    const events = new EventStore(db.pool);
    const ctx = { actor: 'test' };
    const kept = await store.create('Org', '', { name: 'kept', labels: {}, finalizers: [], spec: {} }, ctx);
    const gone = await store.create('Org', '', { name: 'gone', labels: {}, finalizers: [], spec: {} }, ctx);
    await events.record(kept, 'Normal', 'Fresh', 'stays');
    await events.record(kept, 'Normal', 'Ancient', 'too old');
    await events.record(gone, 'Normal', 'Orphan', 'its resource is deleted');
    await store.delete({ kind: 'Org', project: '', name: 'gone' }, ctx);
    await db.pool.query(
      "UPDATE events SET last_timestamp = now() - interval '2 hours' WHERE reason = 'Orphan'",
    );
    await db.pool.query(
      "UPDATE events SET last_timestamp = now() - interval '40 days' WHERE reason = 'Ancient'",
    );
    expect(await events.prune({ goneAfterMs: 3600_000, maxAgeMs: 30 * 86_400_000 })).toBe(2);
    expect(
      (await events.list({ kind: 'Org', project: '', name: 'kept' }, kept.metadata.uid)).map((e) => e.reason),
    ).toEqual(['Fresh']);
    expect(await events.prune({ goneAfterMs: 3600_000, maxAgeMs: 30 * 86_400_000 })).toBe(0);
  });
});
