import { describe, expect, it } from 'vitest';
import { EventStore } from '../../store/event-store.js';
import { ResourceStore } from '../../store/resource-store.js';
import { migratedTestStore } from '../../testing/test-store.js';
import { StatusWriter } from './status-writer.js';

const db = migratedTestStore();

describe('StatusWriter', () => {
  it('reports the generation the work was done for, not one that arrived meanwhile', async () => {
    const store = new ResourceStore(db.pool);
    const writer = new StatusWriter(store, new EventStore(db.pool));
    const key = { kind: 'Org', project: '', name: 'gen-race' };
    const read = await store.create(
      'Org',
      '',
      { name: 'gen-race', labels: {}, finalizers: [], spec: {} },
      { actor: 't' },
    );
    // A user changes the spec while a reconcile of generation 1 is still running…
    await store.update(key, () => ({ spec: { displayName: 'new' } }), { actor: 'user' });
    // …then that reconcile reports what it did.
    const after = await writer.update(
      key,
      (current) => ({ ...current.status, phase: 'Ready' }),
      read.metadata.generation,
    );
    expect(after!.metadata.generation).toBe(2);
    expect(after!.status.observedGeneration).toBe(1); // not done with generation 2 yet
    const current = await writer.update(key, (c) => ({ ...c.status, phase: 'Ready' }));
    expect(current!.status.observedGeneration).toBe(2);
  });
});
