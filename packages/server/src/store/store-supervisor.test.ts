import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { type SupervisedServer, StoreSupervisor } from './store-supervisor.js';

/** A server that dies when told to and refuses to come back `failures` times. */
function fakeServer(failures: number) {
  const state = { running: true, restarts: 0, refusals: 0 };
  const server: SupervisedServer = {
    isRunning: async () => state.running,
    restart: async () => {
      state.restarts++;
      if (state.refusals < failures) {
        state.refusals++;
        throw new Error('pre-existing shared memory block is still in use');
      }
      state.running = true;
    },
  };
  return { state, server };
}

function capturedLogger() {
  const lines: Array<{ level: number; msg: string; attempt?: number }> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  return { lines, logger };
}

const fast = { checkIntervalMs: 10, restartDelayMs: 5, maxRestartDelayMs: 20 };

describe('StoreSupervisor', () => {
  it('leaves a running server alone', async () => {
    const { state, server } = fakeServer(0);
    const { lines, logger } = capturedLogger();
    const supervisor = new StoreSupervisor(server, logger, fast);
    const checks = vi.spyOn(server, 'isRunning');
    supervisor.start();
    await vi.waitFor(() => expect(checks.mock.calls.length).toBeGreaterThan(3));
    await supervisor.stop();
    expect(state.restarts).toBe(0);
    expect(lines).toEqual([]);
  });

  it('restarts a server that died, retrying until it runs again, and says so in the log', async () => {
    const { state, server } = fakeServer(3);
    const { lines, logger } = capturedLogger();
    const supervisor = new StoreSupervisor(server, logger, fast);
    supervisor.start();
    try {
      state.running = false;
      await vi.waitFor(() => expect(state.running).toBe(true));
      expect(state.restarts).toBe(4);
      expect(lines.map((l) => l.msg)).toEqual([
        'the embedded store (PostgreSQL) stopped unexpectedly; restarting it',
        'restarting the embedded store failed; retrying',
        'restarting the embedded store failed; retrying',
        'restarting the embedded store failed; retrying',
        'the embedded store is running again',
      ]);
      expect(lines[1]).toMatchObject({ attempt: 1, err: 'pre-existing shared memory block is still in use' });

      // It keeps watching after a recovery: a second death is healed as well.
      state.running = false;
      await vi.waitFor(() => expect(state.running).toBe(true));
      expect(state.restarts).toBe(5);
    } finally {
      await supervisor.stop();
    }
  });

  it('restarts nothing once stopped, so that the server can be stopped for good', async () => {
    const { state, server } = fakeServer(Infinity);
    const { logger } = capturedLogger();
    const supervisor = new StoreSupervisor(server, logger, fast);
    supervisor.start();
    state.running = false;
    await vi.waitFor(() => expect(state.restarts).toBeGreaterThan(1));
    await supervisor.stop();
    const restarts = state.restarts;
    await new Promise((r) => setTimeout(r, 100));
    expect(state.restarts).toBe(restarts);
  });
});
