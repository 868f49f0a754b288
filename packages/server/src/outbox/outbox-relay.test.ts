import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../bus/bus.js';
import { createLogger } from '../logger.js';
import { ResourceStore } from '../store/resource-store.js';
import { migratedTestStore } from '../testing/test-store.js';
import { OutboxRelay } from './outbox-relay.js';

const db = migratedTestStore();

const logger = createLogger('silent');

function recordingBus(): Bus & { got: BusMessage[] } {
  const got: BusMessage[] = [];
  return {
    got,
    publish: async (m) => void got.push(m),
    subscribe: () => () => undefined,
    connected: true,
    close: async () => undefined,
  };
}

async function writeOrgs(prefix: string, n: number): Promise<string[]> {
  const store = new ResourceStore(db.pool);
  for (let i = 0; i < n; i++) {
    await store.create(
      'Org',
      '',
      { name: `${prefix}-${i}`, labels: {}, finalizers: [], spec: {} },
      { actor: 'test' },
    );
  }
  const { rows } = await db.pool.query<{ id: string }>('SELECT id FROM outbox ORDER BY id');
  return rows.map((r) => String(r.id));
}

async function drain(relay: OutboxRelay): Promise<void> {
  while ((await relay.relayBatch()) > 0);
}

describe('OutboxRelay', () => {
  it('delivers every change at least once when the relay process is killed in the middle of a batch', async () => {
    const ids = await writeOrgs('crash', 300);
    expect(ids).toHaveLength(300);

    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('../testing/outbox-relay-child.ts', import.meta.url)),
        db.url,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const printed: string[] = [];
    let buffer = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        printed.push(...lines);
        if (printed.length >= 75) {
          child.kill('SIGKILL'); // in the middle of its second batch of 50
          resolve();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM outbox');
    expect(Number(rows[0]!.n)).toBeGreaterThan(200); // the unfinished batch was not deleted

    const bus = recordingBus();
    await drain(new OutboxRelay(db.pool, bus, undefined, logger, { batchSize: 40 }));
    const delivered = new Set([...printed, ...bus.got.map((m) => m.id)]);
    expect(ids.filter((id) => !delivered.has(id))).toEqual([]);
    const redelivered = bus.got.filter((m) => printed.includes(m.id));
    expect(redelivered.length).toBeGreaterThan(0); // at-least-once: the killed batch came again, same ids
    expect((await db.pool.query('SELECT 1 FROM outbox')).rowCount).toBe(0);
  });

  it('lets several relays run at once without publishing a committed row twice', async () => {
    const ids = await writeOrgs('pair', 200);
    // A's first publish waits until B has published, so both relays hold a batch at the same time
    // however the scheduler orders them: B must skip A's locked rows rather than wait for or repeat them.
    let bStarted!: () => void;
    const bHasPublished = new Promise<void>((resolve) => (bStarted = resolve));
    const b = recordingBus();
    const publishB = b.publish;
    b.publish = async (m) => {
      bStarted();
      await publishB(m);
    };
    const a = recordingBus();
    const publishA = a.publish;
    a.publish = async (m) => {
      await bHasPublished;
      await publishA(m);
    };
    const relayA = new OutboxRelay(db.pool, a, undefined, logger, { batchSize: 10 });
    const relayB = new OutboxRelay(db.pool, b, undefined, logger, { batchSize: 10 });
    await Promise.all([drain(relayA), drain(relayB)]);
    const fromA = new Set(a.got.map((m) => m.id));
    expect(b.got.filter((m) => fromA.has(m.id))).toEqual([]);
    expect(new Set([...fromA, ...b.got.map((m) => m.id)])).toEqual(new Set(ids));
    expect(a.got.length).toBeGreaterThan(0);
    expect(b.got.length).toBeGreaterThan(0);
  });

  it('keeps the rows when the bus refuses them, and publishes them once it accepts', async () => {
    const ids = await writeOrgs('refused', 3);
    const failing: Bus = {
      publish: async () => Promise.reject(new Error('bus down')),
      subscribe: () => () => undefined,
      connected: true,
      close: async () => undefined,
    };
    await expect(new OutboxRelay(db.pool, failing, undefined, logger).relayBatch()).rejects.toThrow(
      'bus down',
    );
    const bus = recordingBus();
    await drain(new OutboxRelay(db.pool, bus, undefined, logger));
    expect(bus.got.map((m) => m.id)).toEqual(ids);
    expect(bus.got[0]).toMatchObject({
      kind: 'Org',
      project: '',
      name: 'refused-0',
      generation: 1,
      action: 'create',
    });
  });
});
