// A relay in its own process, for the crash test: publishes by printing each outbox id on stdout,
// slowly, so that the test can SIGKILL it in the middle of a batch.
import pg from 'pg';
import type { Bus } from '../bus/bus.js';
import { createLogger } from '../logger.js';
import { OutboxRelay } from '../outbox/outbox-relay.js';

const [databaseUrl] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: databaseUrl });
const printingBus: Bus = {
  publish: async (m) => {
    process.stdout.write(`${m.id}\n`);
    await new Promise((r) => setTimeout(r, 5));
  },
  subscribe: () => () => undefined,
  connected: true,
  close: async () => undefined,
};
const relay = new OutboxRelay(pool, printingBus, undefined, createLogger('silent'), {
  batchSize: 50,
  pollIntervalMs: 100,
});
relay.start();
