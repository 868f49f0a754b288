// npm run bench:reconcile — sustained reconciles per second with 1, 2 and 4 agents. One
// control-plane replica (`kumo server`, its own process, on a PostgreSQL and a nats-server the
// benchmark starts); targets t1..t4 created through the API, each with an agent token; each agent
// in its own process (as remote agents run): an Agent with HttpAgentClient, its own durable NATS
// consumer, and the no-op driver (bench/support/noop-driver.ts), so what is measured is Kumo's
// loop — API, store, outbox, bus, agent — not PostgreSQL's start-up. All four agents run
// throughout; a run with k agents puts its databases on t1..tk (spec.target explicit, round-robin).
// Each run: BENCH_DATABASES databases created (BENCH_CONCURRENCY requests in flight) until all are
// Ready for their generation, then a spec change of each (PATCH a parameter) until all are Ready
// for the new one, followed on the watch stream (no polling). Then they are deleted, so the next
// run starts from an empty project. Reconciles/s is databases brought to Ready for their
// generation per second: each takes one reconcile that does the work (the agents' own counters,
// printed beside it, also count no-op reconciles). The baseline is the run with 1 agent.
import { randomBytes } from 'node:crypto';
import { readSse } from '../packages/server/src/testing/sse-client.js';
import { startNatsServer } from '../packages/server/src/testing/nats-server.js';
import { createTestDatabase, startTestPostgres } from '../packages/server/src/testing/test-postgres.js';
import { type AgentProcess, startAgentProcess } from './support/agent-process.js';
import {
  Cleanup,
  type CpuUse,
  apiClient,
  cpuMeter,
  eachLimited,
  findPid,
  machine,
  postmasterPid,
  until,
} from './support/bench-kit.js';
import { startKumoServer } from './support/kumo-server.js';

const DATABASES = Number(process.env.BENCH_DATABASES ?? 200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const AGENT_COUNTS = [1, 2, 4] as const;
const TARGETS = ['t1', 't2', 't3', 't4'];
/** How long one round (all created, or all changed, or all deleted) may take before the benchmark fails. */
const ROUND_TIMEOUT_MS = 120_000;

interface Round {
  /** From the first request until every database is Ready for its new generation. */
  seconds: number;
  /** How long the API took to accept every request of the round (part of `seconds`). */
  acceptSeconds: number;
  /** Reconciles the agents counted, of every result, including no-op ones (see the docs). */
  reconciles: number;
  errors: number;
  cpu: CpuUse;
}

interface Run {
  agents: number;
  created: Round;
  changed: Round;
}

const cleanup = new Cleanup();
const runs: Run[] = [];
try {
  const server = await startTestPostgres(process.env.PATH ?? '');
  cleanup.defer('the test PostgreSQL', () => server.stop());
  const databaseUrl = await createTestDatabase(server.connection);
  const nats = await startNatsServer();
  cleanup.defer('nats-server', () => nats.stop());
  const cp = await startKumoServer({
    databaseUrl,
    masterKey: randomBytes(32).toString('base64'),
    natsUrl: nats.url,
  });
  cleanup.defer('kumo server', () => cp.stop());
  if (!cp.token) throw new Error('kumo server printed no admin token');
  const api = apiClient(cp.url, cp.token);

  await api('POST', '/v1/orgs', { metadata: { name: 'bench' }, spec: {} });
  await api('POST', '/v1/projects', { metadata: { name: 'bench' }, spec: { org: 'bench' } });
  const agents: AgentProcess[] = [];
  for (const target of TARGETS) {
    await api('POST', '/v1/targets', { metadata: { name: target }, spec: { driver: 'local' } });
    const { token } = await api('POST', `/v1/targets/${target}/agent-tokens`);
    const agent = await startAgentProcess({ target, apiUrl: cp.url, token, natsUrl: nats.url });
    cleanup.defer(`the agent of ${target}`, () => agent.stop());
    agents.push(agent);
  }
  const targetsReady = async () => {
    const { items } = await api('GET', '/v1/targets');
    return TARGETS.every((name) =>
      items.some(
        (t: any) =>
          t.metadata.name === name &&
          t.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'),
      ),
    );
  };
  const deadline = Date.now() + 30_000;
  while (!(await targetsReady()))
    if (Date.now() > deadline) throw new Error('timed out after 30000 ms: the targets to be Ready');

  // Everything the watch stream says about the project's databases: the latest of each, and what is gone.
  const latest = new Map<string, any>();
  const gone = new Set<string>();
  const stopWatching = new AbortController();
  let watchFailure: unknown;
  const watching = readSse(
    `${cp.url}/v1/projects/bench/databases?watch=true`,
    { authorization: `Bearer ${cp.token}` },
    (e) => {
      const db = JSON.parse(e.data);
      if (e.event === 'DELETED') {
        latest.delete(db.metadata.name);
        gone.add(db.metadata.name);
      } else if (e.event === 'ADDED' || e.event === 'MODIFIED') latest.set(db.metadata.name, db);
      else watchFailure = new Error(`the watch stream sent ${e.event}: ${e.data}`);
    },
    stopWatching.signal,
  ).then(
    () => void (stopWatching.signal.aborted || (watchFailure ??= new Error('the watch stream ended'))),
    (err: unknown) => void (watchFailure ??= err),
  );
  cleanup.defer('the watch stream', async () => {
    stopWatching.abort();
    await watching;
  });
  const watched = (check: () => boolean) => () => {
    if (watchFailure) throw watchFailure;
    return check();
  };

  const converged = (name: string, generation: number) => {
    const db = latest.get(name);
    return (
      db?.metadata.generation === generation &&
      db.status?.observedGeneration === generation &&
      db.status.phase === 'Ready' &&
      db.status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
    );
  };
  const countAll = async () => {
    const all = await Promise.all(agents.map((a) => a.counts()));
    const sum = (result: string) => all.reduce((n, c) => n + (c[result] ?? 0), 0);
    return {
      total: sum('success') + sum('requeue') + sum('error') + sum('terminal'),
      errors: sum('error'),
      terminal: sum('terminal'),
    };
  };
  const cpu = cpuMeter({
    'control plane': cp.child.pid!,
    PostgreSQL: postmasterPid(server.connection),
    'nats-server': findPid('nats-server', (argv) => argv.includes(String(nats.port))),
    ...Object.fromEntries(agents.map((a) => [`agent ${a.target}`, a.pid])),
    benchmark: 'self',
  });

  /** Runs `act`, then waits until `done`; returns the round's time, reconciles and CPU. */
  const round = async (what: string, act: () => Promise<void>, done: () => boolean): Promise<Round> => {
    const before = await countAll();
    cpu.start();
    const start = performance.now();
    await act();
    const acceptSeconds = (performance.now() - start) / 1000;
    await until(ROUND_TIMEOUT_MS, what, watched(done));
    const seconds = (performance.now() - start) / 1000;
    const use = cpu.stop();
    const after = await countAll();
    if (after.terminal > before.terminal)
      throw new Error(`${what}: ${after.terminal - before.terminal} reconciles ended in a terminal error`);
    return {
      seconds,
      acceptSeconds,
      reconciles: after.total - before.total,
      errors: after.errors - before.errors,
      cpu: use,
    };
  };

  for (const k of AGENT_COUNTS) {
    const names = Array.from({ length: DATABASES }, (_, i) => `r${k}-${i}`);
    const created = await round(
      `${DATABASES} databases on ${k} agents to be Ready`,
      () =>
        eachLimited(names, CONCURRENCY, async (name) => {
          const i = Number(name.split('-')[1]);
          await api('POST', '/v1/projects/bench/databases', {
            metadata: { name },
            spec: { engine: 'postgres', version: '15', plan: 'small', storageGB: 1, target: TARGETS[i % k] },
          });
        }),
      () => names.every((n) => converged(n, 1)),
    );
    const changed = await round(
      `${DATABASES} databases on ${k} agents to converge on a spec change`,
      () =>
        eachLimited(names, CONCURRENCY, async (name) => {
          const db = await api('PATCH', `/v1/projects/bench/databases/${name}`, {
            spec: { parameters: { log_connections: true } },
          });
          if (db.metadata.generation !== 2)
            throw new Error(`${name}: a spec change gave generation ${db.metadata.generation}, not 2`);
        }),
      () => names.every((n) => converged(n, 2)),
    );
    await eachLimited(names, CONCURRENCY, (name) =>
      api('DELETE', `/v1/projects/bench/databases/${name}`).then(() => undefined),
    );
    await until(
      ROUND_TIMEOUT_MS,
      `the databases of the run with ${k} agents to be deleted`,
      watched(() => names.every((n) => gone.has(n))),
    );
    runs.push({ agents: k, created, changed });
  }
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanup.run();
}

if (process.exitCode !== 1) {
  /** Each database brought to Ready for its generation took one reconcile that did the work. */
  const rate = (r: Round) => DATABASES / r.seconds;
  /** Cores used on average during the round; the agents' summed. */
  const cores = (r: Round, label: string) =>
    label === 'agents'
      ? Object.entries(r.cpu.processes)
          .filter(([name]) => name.startsWith('agent '))
          .reduce((n, [, v]) => n + v, 0)
      : (r.cpu.processes[label] ?? 0);
  const rounds = (run: Run) =>
    [
      ['create → Ready', run.created],
      ['spec change → Ready', run.changed],
    ] as const;
  console.log(
    `\nKumo reconcile throughput — ${machine()}; ${DATABASES} databases per run, ${CONCURRENCY} API requests in flight, the no-op driver\n`,
  );
  console.log(
    '| agents | round | API accepted all, s | all Ready, s | reconciles/s | reconciles counted | retried errors | CPU cores: control plane / agents / PostgreSQL / NATS / benchmark | machine busy |',
  );
  console.log('|---:|---|---:|---:|---:|---:|---:|---|---:|');
  for (const run of runs)
    for (const [label, r] of rounds(run)) {
      const used = ['control plane', 'agents', 'PostgreSQL', 'nats-server', 'benchmark']
        .map((p) => cores(r, p).toFixed(2))
        .join(' / ');
      console.log(
        `| ${run.agents} | ${label} | ${r.acceptSeconds.toFixed(2)} | ${r.seconds.toFixed(2)} | ${rate(r).toFixed(1)} | ${r.reconciles} | ${r.errors} | ${used} | ${(r.cpu.machine * 100).toFixed(0)}% |`,
      );
    }
  console.log('\nCPU time per database brought to Ready, ms: control plane / agents / PostgreSQL');
  for (const run of runs)
    for (const [label, r] of rounds(run)) {
      const ms = ['control plane', 'agents', 'PostgreSQL']
        .map((p) => ((cores(r, p) * r.seconds * 1000) / DATABASES).toFixed(0))
        .join(' / ');
      console.log(`  ${run.agents} agent(s), ${label}: ${ms}`);
    }
  const one = runs[0]!;
  console.log('\nratio against 1 agent (reconciles/s):');
  for (const run of runs.slice(1))
    console.log(
      `  ${run.agents} agents: create ${(rate(run.created) / rate(one.created)).toFixed(2)}, spec change ${(rate(run.changed) / rate(one.changed)).toFixed(2)}`,
    );
}
