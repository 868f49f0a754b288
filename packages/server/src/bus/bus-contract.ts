import { afterEach, describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from './bus.js';

/** The behaviour every Bus implementation must show; each implementation's test calls this. */
export function runBusContract(name: string, newBus: () => Promise<Bus>): void {
  describe(`Bus contract: ${name}`, () => {
    let bus: Bus | undefined;
    afterEach(async () => {
      await bus?.close();
    });
    const message = (id: string, kind = 'Thing'): BusMessage => ({
      id,
      kind,
      project: 'p',
      name: `n${id}`,
      generation: 1,
      action: 'update',
    });
    const until = async (check: () => boolean) => {
      const deadline = Date.now() + 5000;
      while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    };

    it('delivers to every subscriber of the kind, and only of that kind', async () => {
      bus = await newBus();
      const a: string[] = [];
      const b: string[] = [];
      const other: string[] = [];
      bus.subscribe('Thing', async (m) => void a.push(m.id));
      bus.subscribe('Thing', async (m) => void b.push(m.id));
      bus.subscribe('Other', async (m) => void other.push(m.id));
      await bus.publish(message('1'));
      await bus.publish(message('2'));
      await until(() => a.length === 2 && b.length === 2);
      expect(a.sort()).toEqual(['1', '2']);
      expect(b.sort()).toEqual(['1', '2']);
      expect(other).toEqual([]);
    });

    it('redelivers a message whose handler rejected (at-least-once), with the same id', async () => {
      bus = await newBus();
      const attempts: string[] = [];
      bus.subscribe('Thing', async (m) => {
        attempts.push(m.id);
        if (attempts.length < 3) throw new Error('try again');
      });
      await bus.publish(message('7'));
      await until(() => attempts.length >= 3);
      expect(attempts.slice(0, 3)).toEqual(['7', '7', '7']);
    });

    it('accepts the same id twice (the relay republishes after a crash) and delivers it', async () => {
      bus = await newBus();
      const got: string[] = [];
      bus.subscribe('Thing', async (m) => void got.push(m.id));
      await bus.publish(message('5'));
      await bus.publish(message('5'));
      await until(() => got.length >= 1);
      expect(new Set(got)).toEqual(new Set(['5']));
    });

    it('stops delivering after unsubscribe, and rejects publish after close', async () => {
      bus = await newBus();
      const got: string[] = [];
      const unsubscribe = bus.subscribe('Thing', async (m) => void got.push(m.id));
      unsubscribe();
      await bus.publish(message('1'));
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual([]);
      await bus.close();
      await expect(bus.publish(message('2'))).rejects.toThrow();
    });
  });
}
