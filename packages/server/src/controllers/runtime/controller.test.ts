import { describe, expect, it, vi } from 'vitest';
import { InProcessBus } from '../../bus/in-process-bus.js';
import { createLogger } from '../../logger.js';
import { Metrics } from '../../metrics.js';
import type { ResourceKey } from '../../store/resource-rows.js';
import { Controller } from './controller.js';
import { type Reconciler, TerminalError } from './reconciler.js';

const logger = createLogger('silent');

function setup(reconcile: Reconciler['reconcile'], keys: ResourceKey[] = []) {
  const bus = new InProcessBus(logger);
  const terminal: Array<{ key: ResourceKey; err: TerminalError }> = [];
  const controller = new Controller(
    { name: 'test', kind: 'Thing', reconcile },
    {
      bus,
      logger,
      metrics: new Metrics(),
      listKeys: async () => keys,
      reportTerminalError: async (key, err) => void terminal.push({ key, err }),
    },
    { workers: 3, baseBackoffMs: 5, resyncIntervalMs: 60_000 },
  );
  return { bus, controller, terminal };
}

const key = (name: string): ResourceKey => ({ kind: 'Thing', project: 'p', name });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Controller', () => {
  it('reconciles keys from the initial resync and from bus nudges', async () => {
    const seen: string[] = [];
    const { bus, controller } = setup(async (k) => void seen.push(k.name), [key('listed')]);
    controller.start();
    await bus.publish({
      id: '1',
      kind: 'Thing',
      project: 'p',
      name: 'nudged',
      generation: 1,
      action: 'update',
    });
    await bus.publish({
      id: '2',
      kind: 'Other',
      project: 'p',
      name: 'ignored',
      generation: 1,
      action: 'create',
    });
    // A status write is the reconciler's own output: no reason to reconcile again.
    await bus.publish({
      id: '3',
      kind: 'Thing',
      project: 'p',
      name: 'status-only',
      generation: 1,
      action: 'update-status',
    });
    await vi.waitFor(() => expect(seen).toHaveLength(2), { timeout: 10_000 });
    await sleep(50); // room for a wrong third reconcile to show
    await controller.stop();
    expect(seen.sort()).toEqual(['listed', 'nudged']);
  });

  it('retries a failing key with growing backoff until it succeeds', async () => {
    const attempts: number[] = [];
    const { controller } = setup(async () => {
      attempts.push(attempts.length);
      if (attempts.length < 4) throw new Error('not yet');
    }, [key('flaky')]);
    controller.start();
    while (attempts.length < 4) await sleep(5);
    await sleep(50);
    await controller.stop();
    expect(attempts).toHaveLength(4); // and no more once it succeeded
  });

  it('requeues after requeueAfterMs without an error', async () => {
    let runs = 0;
    const { controller } = setup(
      async () => (++runs < 3 ? { requeueAfterMs: 10 } : undefined),
      [key('poll')],
    );
    controller.start();
    while (runs < 3) await sleep(5);
    await sleep(40);
    await controller.stop();
    expect(runs).toBe(3);
  });

  it('does not retry a terminal error but reports it', async () => {
    let runs = 0;
    const { controller, terminal } = setup(async () => {
      runs++;
      throw new TerminalError('BadSpec', 'version 99 does not exist');
    }, [key('broken')]);
    controller.start();
    await vi.waitFor(() => expect(terminal).toHaveLength(1), { timeout: 10_000 });
    await sleep(100); // room for a wrong retry to show
    await controller.stop();
    expect(runs).toBe(1);
    expect(terminal).toHaveLength(1);
    expect(terminal[0]!.err.reason).toBe('BadSpec');
  });

  it('finishes reconciles in flight on stop and starts no new ones', async () => {
    let finished = 0;
    let started = 0;
    const { controller } = setup(async () => {
      started++;
      await sleep(500);
      finished++;
    }, [key('a'), key('b'), key('c'), key('d'), key('e')]);
    controller.start();
    await vi.waitFor(() => expect(started).toBe(3), { timeout: 10_000, interval: 5 }); // 3 workers
    await controller.stop();
    expect(started).toBe(3);
    expect(finished).toBe(3);
    await sleep(600);
    expect(started).toBe(3);
  });
});
