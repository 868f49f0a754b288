import { describe, expect, it, vi } from 'vitest';
import { WorkQueue } from './work-queue.js';

describe('WorkQueue', () => {
  it('collapses repeated adds of a waiting key', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands out a key that is in progress; an add meanwhile queues it once after done()', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    q.add('a');
    expect(q.length).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await new Promise((r) => setTimeout(r, 10));
    expect(second).toBeUndefined();
    q.done(key!);
    await new Promise((r) => setTimeout(r, 0));
    expect(second).toBe('a');
    expect(q.length).toBe(0);
  });

  it('runs workers in parallel on different keys but never on the same key', async () => {
    const q = new WorkQueue();
    const active = new Set<string>();
    let overlaps = 0;
    let processed = 0;
    const worker = async () => {
      for (;;) {
        const key = await q.get();
        if (key === undefined) return;
        if (active.has(key)) overlaps++;
        active.add(key);
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        active.delete(key);
        processed++;
        q.done(key);
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    for (let i = 0; i < 300; i++) {
      q.add(`k${i % 5}`);
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await new Promise((r) => setTimeout(r, 100));
    q.shutDown();
    await Promise.all(workers);
    expect(overlaps).toBe(0);
    expect(processed).toBeGreaterThanOrEqual(5);
    expect(processed).toBeLessThan(300); // collapsed
  });

  it('backs off exponentially per key and resets on forget', () => {
    const q = new WorkQueue({ baseBackoffMs: 10, maxBackoffMs: 50 });
    expect([
      q.addRateLimited('a'),
      q.addRateLimited('a'),
      q.addRateLimited('a'),
      q.addRateLimited('a'),
    ]).toEqual([10, 20, 40, 50]);
    expect(q.addRateLimited('b')).toBe(10);
    q.forget('a');
    expect(q.addRateLimited('a')).toBe(10);
    q.shutDown();
  });

  it('adds after a delay, keeping the earliest of several delayed adds', async () => {
    vi.useFakeTimers();
    try {
      const q = new WorkQueue();
      q.addAfter('a', 200);
      q.addAfter('a', 30);
      q.addAfter('a', 500);
      vi.advanceTimersByTime(29);
      expect(q.length).toBe(0);
      vi.advanceTimersByTime(1);
      expect(q.length).toBe(1);
      expect(await q.get()).toBe('a');
      q.done('a');
      vi.advanceTimersByTime(1000);
      expect(q.length).toBe(0); // the later delayed adds were superseded
    } finally {
      vi.useRealTimers();
    }
  });

  it('resolves waiting getters with undefined on shutdown and ignores later adds', async () => {
    const q = new WorkQueue();
    const pending = q.get();
    q.shutDown();
    expect(await pending).toBeUndefined();
    q.add('x');
    expect(q.length).toBe(0);
  });
});
