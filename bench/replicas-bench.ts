// npm run bench:replicas — API write latency at a fixed rate through two control-plane replicas
// against one. Each replica is `kumo server` in its own process (as deployed: two in one process
// would share one event loop), on port 0, on one PostgreSQL the benchmark starts; the in-process
// bus (BENCH_NATS=1: a nats-server the benchmark starts). Writes are PATCHes of an org's spec at
// BENCH_RATE (200)/s for BENCH_SECONDS (20) s, sent open-loop (each at its scheduled moment,
// whatever the ones before are doing), every answer checked. Three phases: one replica; two, the
// writes alternating between them (the second replica starts just before); one again after the
// second stopped. The baseline is the mean of the two one-replica phases, measured in the same run.
import { randomBytes } from 'node:crypto';
import { startNatsServer } from '../packages/server/src/testing/nats-server.js';
import { createTestDatabase, startTestPostgres } from '../packages/server/src/testing/test-postgres.js';
import {
  Cleanup,
  type CpuUse,
  apiClient,
  cpuMeter,
  eachLimited,
  findPid,
  machine,
  percentile,
  postmasterPid,
  sleep,
} from './support/bench-kit.js';
import { type KumoServer, startKumoServer } from './support/kumo-server.js';

const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const WARM_UP_SECONDS = 3;
/** Orgs the PATCHes go round: each is written about once a second at 200/s. */
const ORGS = 200;
const REQUEST_TIMEOUT_MS = 10_000;

interface Phase {
  name: string;
  latencies: number[];
  /** How late the generator sent requests (its own event loop), p99. */
  lateP99: number;
  /** Writes answered per second, from the first sent until the last answered: below RATE, a queue grew. */
  answeredPerSecond: number;
  cpu: CpuUse;
}

const cleanup = new Cleanup();
const phases: Phase[] = [];
const useNats = process.env.BENCH_NATS === '1';
try {
  const server = await startTestPostgres(process.env.PATH ?? '');
  cleanup.defer('the test PostgreSQL', () => server.stop());
  const databaseUrl = await createTestDatabase(server.connection);
  const nats = useNats ? await startNatsServer() : undefined;
  if (nats) cleanup.defer('nats-server', () => nats.stop());
  const options = {
    databaseUrl,
    masterKey: randomBytes(32).toString('base64'),
    ...(nats ? { natsUrl: nats.url } : {}),
  };
  const first = await startKumoServer(options);
  cleanup.defer('the first kumo server', () => first.stop());
  const token = first.token;
  if (!token) throw new Error('kumo server printed no admin token');
  const api = apiClient(first.url, token);
  await eachLimited(
    Array.from({ length: ORGS }, (_, i) => `o-${i}`),
    8,
    (name) => api('POST', '/v1/orgs', { metadata: { name }, spec: {} }),
  );

  let sequence = 0;
  /**
   * Sends RATE PATCHes a second for `seconds`, request i to replicas[i % n], each at its moment;
   * resolves with every latency once all have answered. Throws at the end if any was not 2xx.
   */
  const drive = async (what: string, replicas: KumoServer[], seconds: number) => {
    const latencies: number[] = [];
    const late: number[] = [];
    const failures: string[] = [];
    const send = async (i: number) => {
      const org = `o-${i % ORGS}`;
      const url = `${replicas[i % replicas.length]!.url}/v1/orgs/${org}`;
      const start = performance.now();
      try {
        const res = await fetch(url, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ spec: { displayName: `v${sequence++}` } }),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const body = await res.text();
        if (res.status < 200 || res.status >= 300) failures.push(`PATCH ${url}: ${res.status} ${body}`);
        else latencies.push(performance.now() - start);
      } catch (err) {
        failures.push(`PATCH ${url}: ${String(err)}`);
      }
    };
    const sent: Promise<void>[] = [];
    const start = performance.now() + 10;
    for (let i = 0; i < seconds * RATE; i++) {
      const due = start + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      late.push(Math.max(0, performance.now() - due));
      sent.push(send(i));
    }
    await Promise.all(sent);
    const answeredPerSecond = latencies.length / ((performance.now() - start) / 1000);
    if (failures.length > 0)
      throw new Error(
        `${what}: ${failures.length} of ${seconds * RATE} writes at ${RATE}/s failed; the first: ${failures.slice(0, 3).join('; ')}`,
      );
    return { latencies, lateP99: percentile(late, 99), answeredPerSecond };
  };

  const pgPid = postmasterPid(server.connection);
  const natsPid = nats && findPid('nats-server', (argv) => argv.includes(String(nats.port)));
  const phase = async (name: string, replicas: KumoServer[]) => {
    await drive(`${name}, warming up`, replicas, WARM_UP_SECONDS); // JIT, connection pools
    const meter = cpuMeter({
      ...Object.fromEntries(replicas.map((r, i) => [`replica ${i + 1}`, r.child.pid!])),
      PostgreSQL: pgPid,
      ...(natsPid ? { 'nats-server': natsPid } : {}),
      benchmark: 'self',
    });
    meter.start();
    const result = await drive(name, replicas, SECONDS);
    phases.push({ name, ...result, cpu: meter.stop() });
  };

  await phase('one replica', [first]);
  const second = await startKumoServer(options);
  cleanup.defer('the second kumo server', () => second.stop());
  await phase('two replicas, alternating', [first, second]);
  await second.stop();
  await phase('one replica again', [first]);
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanup.run();
}

if (process.exitCode !== 1) {
  console.log(
    `\nKumo replicas benchmark — ${machine()}; PATCH /v1/orgs/{name} at ${RATE}/s for ${SECONDS} s per phase, open loop; ${useNats ? 'NATS' : 'in-process'} bus\n`,
  );
  console.log(
    '| phase | writes | answered/s | p50 ms | p99 ms | max ms | generator late p99 ms | CPU cores: replicas / PostgreSQL / benchmark | machine busy |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---|---:|');
  for (const p of phases) {
    const replicas = Object.entries(p.cpu.processes)
      .filter(([label]) => label.startsWith('replica'))
      .map(([, v]) => v.toFixed(2))
      .join(' + ');
    console.log(
      `| ${p.name} | ${p.latencies.length} | ${p.answeredPerSecond.toFixed(0)} | ${percentile(p.latencies, 50).toFixed(1)} | ${percentile(p.latencies, 99).toFixed(1)} | ${Math.max(...p.latencies).toFixed(1)} | ${p.lateP99.toFixed(1)} | ${replicas} / ${p.cpu.processes.PostgreSQL!.toFixed(2)} / ${p.cpu.processes.benchmark!.toFixed(2)} | ${(p.cpu.machine * 100).toFixed(0)}% |`,
    );
  }
  const [one, two, again] = phases as [Phase, Phase, Phase];
  const ratio = (p: number) =>
    (
      percentile(two.latencies, p) /
      ((percentile(one.latencies, p) + percentile(again.latencies, p)) / 2)
    ).toFixed(2);
  console.log(
    `\nratio two replicas / one (the mean of both one-replica phases): p50 ${ratio(50)}, p99 ${ratio(99)}`,
  );
}
