import { jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../logger.js';
import { startNatsServer, type TestNatsServer } from '../testing/nats-server.js';
import { waitFor } from '../testing/wait.js';
import type { BusMessage } from './bus.js';
import { runBusContract } from './bus-contract.js';
import { NO_TARGET, NUDGE_STREAM, NatsBus, type NatsConsumerOptions } from './nats-bus.js';

const logger = createLogger('silent');
const servers: TestNatsServer[] = [];
const buses: NatsBus[] = [];

/** A server of the test's own; stopped after the file. */
async function newServer(): Promise<TestNatsServer> {
  const server = await startNatsServer();
  servers.push(server);
  return server;
}

async function newBus(url: string, consumer: NatsConsumerOptions): Promise<NatsBus> {
  const bus = await NatsBus.connect({ url, logger, consumer, publishTimeoutMs: 1000, retryDelayMs: 20 });
  buses.push(bus);
  return bus;
}

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close()));
  await Promise.all(servers.map((server) => server.stop()));
});

// A fresh server each time: the contract reuses ids, which the stream would drop as duplicates.
runBusContract('nats', async () => newBus((await newServer()).url, { name: 'contract', durable: false }));

const message = (id: string, target?: string, kind = 'Database'): BusMessage => ({
  id,
  kind,
  project: 'p',
  name: `n${id}`,
  generation: 1,
  action: 'update',
  ...(target === undefined ? {} : { target }),
});

/** Records the ids a bus delivers for `kind`. */
function record(bus: NatsBus, kind = 'Database'): string[] {
  const got: string[] = [];
  bus.subscribe(kind, async (m) => void got.push(m.id));
  return got;
}

const delivered = (got: string[], id: string) =>
  waitFor(async () => (got.includes(id) ? true : undefined), `delivery of ${id}`);

describe('NatsBus', () => {
  let server: TestNatsServer;
  let publisher: NatsBus;
  beforeAll(async () => {
    server = await newServer();
    publisher = await newBus(server.url, { name: 'publisher', durable: false });
  });

  it("gives a control-plane replica (targets ['_']) the nudges for no target, and no agent's", async () => {
    const replica = await newBus(server.url, { name: 'control-plane', durable: false, targets: [NO_TARGET] });
    const got = record(replica, 'Org');
    const agentOnly = record(replica, 'Database');
    await publisher.publish(message('cp-1', 'b', 'Database'));
    await publisher.publish(message('cp-2', undefined, 'Org'));
    await delivered(got, 'cp-2');
    expect(agentOnly).toEqual([]);
  });

  it('delivers an id published twice once', async () => {
    const bus = await newBus(server.url, { name: 'dedup', durable: false });
    const got = record(bus, 'Dedup');
    await publisher.publish(message('d1', undefined, 'Dedup'));
    await publisher.publish(message('d1', undefined, 'Dedup'));
    await publisher.publish(message('d2', undefined, 'Dedup'));
    await delivered(got, 'd2');
    expect(got).toEqual(['d1', 'd2']);
  });

  it('gives a durable consumer that was away what was published meanwhile', async () => {
    const first = await newBus(server.url, { name: 'agent-a', durable: true, targets: ['a'] });
    const before = record(first);
    await publisher.publish(message('a1', 'a'));
    await delivered(before, 'a1');
    await first.close();

    await publisher.publish(message('a2', 'a'));
    await publisher.publish(message('a3', 'a'));
    const again = await newBus(server.url, { name: 'agent-a', durable: true, targets: ['a'] });
    const after = record(again);
    await delivered(after, 'a3');
    expect(after).toEqual(['a2', 'a3']);
  });

  it.each([
    { reason: 'one target: filtered by the server', targets: ['b1'], other: 'c1' },
    { reason: 'several targets: filtered by the client', targets: ['b2', 'd2'], other: 'c2' },
  ])('sees only messages for its targets ($reason)', async ({ targets, other }) => {
    const bus = await newBus(server.url, { name: `targets-${other}`, durable: true, targets });
    const got = record(bus);
    await publisher.publish(message(`${other}-1`, other));
    await publisher.publish(message(`${other}-2`));
    await publisher.publish(message(`${other}-3`, targets[0]));
    await delivered(got, `${other}-3`);
    expect(got).toEqual([`${other}-3`]);
  });

  it('creates its consumer again when the server lost it', async () => {
    const bus = await newBus(server.url, { name: 'lost', durable: true, targets: ['lost'] });
    const got = record(bus);
    await publisher.publish(message('l1', 'lost'));
    await delivered(got, 'l1');
    const nc = await connect({ servers: server.url });
    await (await jetstreamManager(nc)).consumers.delete(NUDGE_STREAM, 'lost');
    await nc.close();
    await publisher.publish(message('l2', 'lost'));
    await delivered(got, 'l2');
  });

  it('brings an existing stream up to date when several processes connect at once', async () => {
    const fresh = await newServer();
    const nc = await connect({ servers: fresh.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: NUDGE_STREAM, subjects: ['kumo.nudges.>'], max_age: nanos(60_000) });
    await Promise.all(['r1', 'r2', 'r3'].map((name) => newBus(fresh.url, { name, durable: false })));
    const { config } = await jsm.streams.info(NUDGE_STREAM);
    await nc.close();
    expect(config.max_age).toBe(nanos(24 * 3600_000));
    expect(config.duplicate_window).toBe(nanos(2 * 60_000));
  });
});

describe('NatsBus across server outages', () => {
  let server: TestNatsServer;
  afterEach(async () => {
    await server.stop();
  });

  it.each([{ durable: true }, { durable: false }])(
    'resumes consumption and publishing after a server restart (durable: $durable)',
    async ({ durable }) => {
      server = await newServer();
      const bus = await newBus(server.url, { name: 'restart', durable });
      const got = record(bus);
      await bus.publish(message('r1'));
      await delivered(got, 'r1');

      await server.restart();
      await waitFor(async () => bus.publish(message('r2')).then(() => true), 'a publish after the restart');
      await delivered(got, 'r2');
      expect(bus.connected).toBe(true);
    },
  );

  it('rejects publish while the server is down, and still closes', async () => {
    server = await newServer();
    const bus = await newBus(server.url, { name: 'down', durable: false });
    record(bus);
    await server.stop();
    await waitFor(async () => (bus.connected ? undefined : true), 'the bus to notice');
    await expect(bus.publish(message('x1'))).rejects.toThrow();
    await bus.close();
    await expect(bus.publish(message('x2'))).rejects.toThrow('closed');
  });
});
