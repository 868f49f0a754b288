// npm run bench:nudge — change → agent nudge latency. A write committed through ResourceStore (a
// Database with spec.target b) on a PostgreSQL the benchmark starts; the OutboxRelay, woken by the
// Notifier's LISTEN, publishes it; the subscriber of target b records when the nudge arrives.
// Through NATS JetStream (the relay's bus and the agent's durable consumer agent-b, on a
// nats-server the benchmark starts), against the in-process bus as the baseline, in the same run:
// the two alternate in blocks (ABBA…), so a noisy stretch of the machine falls on both.
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import type { Bus, BusMessage } from '../packages/server/src/bus/bus.js';
import { InProcessBus } from '../packages/server/src/bus/in-process-bus.js';
import { NatsBus } from '../packages/server/src/bus/nats-bus.js';
import { createLogger } from '../packages/server/src/logger.js';
import { OutboxRelay } from '../packages/server/src/outbox/outbox-relay.js';
import { migrate } from '../packages/server/src/store/migrate.js';
import { Notifier } from '../packages/server/src/store/notifier.js';
import { ResourceStore } from '../packages/server/src/store/resource-store.js';
import { startNatsServer } from '../packages/server/src/testing/nats-server.js';
import { createTestDatabase, startTestPostgres } from '../packages/server/src/testing/test-postgres.js';
import { Cleanup, machine, percentile, sleep, until } from './support/bench-kit.js';

/** Timed writes per bus. */
const WRITES = Number(process.env.BENCH_WRITES ?? 500);
/** Writes per second, paced (one at a time, each at its scheduled moment). */
const RATE = Number(process.env.BENCH_RATE ?? 50);
/** Timed blocks per bus; the order alternates, in-process first in even blocks. */
const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 4);
/** Untimed writes per bus first: connections, the stream, the consumer and the code warm up. */
const WARM_UP = 25;
/** How long the last nudge of a block may take before the benchmark fails. */
const NUDGE_TIMEOUT_MS = 10_000;

type BusName = 'in-process' | 'NATS';

const logger = createLogger('warn');
const cleanup = new Cleanup();
const latencies: Record<BusName, number[]> = { 'in-process': [], NATS: [] };
const writeTimes: number[] = [];
const natsVersion = execFileSync('/usr/sbin/nats-server', ['--version']).toString().trim();

try {
  const server = await startTestPostgres(process.env.PATH ?? '');
  cleanup.defer('the test PostgreSQL', () => server.stop());
  const url = await createTestDatabase(server.connection);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  cleanup.defer('the store pool', () => pool.end());
  await migrate(pool);
  const store = new ResourceStore(pool);
  const notifier = new Notifier(url, ['kumo_outbox'], logger);
  await notifier.start();
  cleanup.defer('the notifier', () => notifier.close());
  const nats = await startNatsServer();
  cleanup.defer('nats-server', () => nats.stop());

  const inProcess = new InProcessBus(logger);
  cleanup.defer('the in-process bus', () => inProcess.close());
  // What a control-plane replica publishes through, and what the agent of b reads (as `kumo agent`).
  const natsRelayBus = await NatsBus.connect({
    url: nats.url,
    logger,
    consumer: { name: 'bench-relay', durable: false, targets: [] },
  });
  cleanup.defer('the relay’s NATS bus', () => natsRelayBus.close());
  const natsAgentBus = await NatsBus.connect({
    url: nats.url,
    logger,
    consumer: { name: 'agent-b', durable: true, targets: ['b'] },
  });
  cleanup.defer('the agent’s NATS bus', () => natsAgentBus.close());
  const buses: Record<BusName, { publish: Bus; subscribe: Bus }> = {
    'in-process': { publish: inProcess, subscribe: inProcess },
    NATS: { publish: natsRelayBus, subscribe: natsAgentBus },
  };

  const arrivals = new Map<string, { at: number; bus: BusName }>();
  const misdelivered: string[] = [];
  for (const name of ['in-process', 'NATS'] as const) {
    buses[name].subscribe.subscribe('Database', async (m: BusMessage) => {
      if (m.action !== 'create') return;
      if (m.target !== 'b') misdelivered.push(`${m.name}: target ${m.target}`);
      if (!arrivals.has(m.name)) arrivals.set(m.name, { at: performance.now(), bus: name });
    });
  }

  /** Writes `count` databases at RATE through a relay publishing on `bus`; returns commit → nudge per write. */
  const block = async (bus: BusName, prefix: string, count: number): Promise<number[]> => {
    const relay = new OutboxRelay(pool, buses[bus].publish, notifier, logger);
    relay.start();
    const committed = new Map<string, number>();
    try {
      const start = performance.now();
      for (let i = 0; i < count; i++) {
        const wait = start + (i * 1000) / RATE - performance.now();
        if (wait > 0) await sleep(wait);
        const name = `${prefix}-${i}`;
        const began = performance.now();
        // No parent is named, so none is locked: the relay needs only the row and its outbox entry.
        await store.create(
          'Database',
          'bench',
          {
            name,
            labels: {},
            finalizers: [],
            spec: { engine: 'postgres', version: '15', plan: 'small', storageGB: 1, target: 'b' },
          },
          { actor: 'bench' },
        );
        committed.set(name, performance.now());
        writeTimes.push(committed.get(name)! - began);
      }
      const names = [...committed.keys()];
      await until(NUDGE_TIMEOUT_MS, `the nudges of block ${prefix} through the ${bus} bus`, () =>
        names.every((n) => arrivals.has(n)),
      );
      const wrong = names.filter((n) => arrivals.get(n)!.bus !== bus);
      if (wrong.length > 0) throw new Error(`nudges arrived through the wrong bus: ${wrong.join(', ')}`);
      return names.map((n) => arrivals.get(n)!.at - committed.get(n)!);
    } finally {
      await relay.stop();
    }
  };

  for (const bus of ['in-process', 'NATS'] as const) await block(bus, `warm-${bus}`, WARM_UP);
  writeTimes.length = 0;
  for (let b = 0; b < BLOCKS; b++) {
    const order: BusName[] = b % 2 === 0 ? ['in-process', 'NATS'] : ['NATS', 'in-process'];
    const count = Math.round(WRITES / BLOCKS);
    for (const bus of order) latencies[bus].push(...(await block(bus, `b${b}-${bus}`, count)));
  }
  if (misdelivered.length > 0) throw new Error(`nudges with the wrong target: ${misdelivered.join('; ')}`);
  const left = await pool.query<{ n: string }>('SELECT count(*) AS n FROM outbox');
  if (Number(left.rows[0]!.n) !== 0) throw new Error(`${left.rows[0]!.n} outbox rows were left unpublished`);
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanup.run();
}

if (process.exitCode !== 1) {
  const row = (label: string, xs: number[]) =>
    console.log(
      `| ${label} | ${xs.length} | ${percentile(xs, 50).toFixed(2)} | ${percentile(xs, 99).toFixed(2)} | ${Math.max(...xs).toFixed(2)} |`,
    );
  console.log(
    `\nKumo change → nudge benchmark — ${machine()}; ${WRITES} writes per bus at ${RATE}/s in ${BLOCKS} alternating blocks; ${natsVersion}\n`,
  );
  console.log('| commit → nudge arrives | n | p50 ms | p99 ms | max ms |');
  console.log('|---|---:|---:|---:|---:|');
  row('baseline: in-process bus', latencies['in-process']);
  row('NATS JetStream (relay publish → durable consumer agent-b)', latencies.NATS);
  row('(the write itself: ResourceStore.create → committed)', writeTimes);
  const ratio = (p: number) =>
    (percentile(latencies.NATS, p) / percentile(latencies['in-process'], p)).toFixed(2);
  console.log(`\nratio NATS / in-process: p50 ${ratio(50)}, p99 ${ratio(99)}`);
}
