// A child process of bench:reconcile (forked by agent-process.ts, with an IPC channel): the agent
// of one target, as `kumo agent` composes it, but with the NoopDriver. Settings come from the
// environment the parent sets: BENCH_AGENT_TARGET, _API, _TOKEN, _NATS. It sends {type: 'ready'}
// once it holds the target's lease; answers {type: 'count'} with its reconcile counts by result;
// on {type: 'stop'} stops cleanly and exits 0. It exits 1 when the parent goes away.
import { Agent } from '../../packages/server/src/agent/agent.js';
import { HttpAgentClient } from '../../packages/server/src/agent/http-agent-client.js';
import { NatsBus } from '../../packages/server/src/bus/nats-bus.js';
import { resolveConfig } from '../../packages/server/src/config.js';
import { EngineCatalog } from '../../packages/server/src/engines/engine-catalog.js';
import { createLogger } from '../../packages/server/src/logger.js';
import { Metrics } from '../../packages/server/src/metrics.js';
import { until } from './bench-kit.js';
import { NoopDriver } from './noop-driver.js';

export type AgentRequest = { type: 'count' } | { type: 'stop' };
export type AgentReply = { type: 'ready' } | { type: 'count'; counts: Record<string, number> };

const setting = (name: string): string => {
  const value = process.env[`BENCH_AGENT_${name}`];
  if (!value) throw new Error(`BENCH_AGENT_${name} is not set`);
  return value;
};
const target = setting('TARGET');
const config = resolveConfig({ natsUrl: setting('NATS'), logLevel: 'warn' }, { PATH: process.env.PATH });
if (config.bus.kind !== 'nats') throw new Error('the agent needs NATS');
const logger = createLogger(config.logLevel);
const metrics = new Metrics();
const bus = await NatsBus.connect({
  url: config.bus.url,
  logger,
  consumer: { name: `agent-${target}`, durable: true, targets: [target] },
});
const agent = new Agent(
  target,
  {
    client: new HttpAgentClient({ apiUrls: [setting('API')], token: setting('TOKEN'), target }),
    driver: new NoopDriver(),
    // What the agent offers: PostgreSQL 15, whether or not this host has it installed.
    catalog: EngineCatalog.offering([{ engine: 'postgres', versions: ['15'] }]),
    bus,
    metrics,
    logger,
    holder: `bench-agent/${target}`,
  },
  { ...config.controllers, leaseTtlMs: config.leaseTtlMs },
);
process.on('disconnect', () => process.exit(1));
await agent.start();
await until(30_000, `the agent of ${target} to hold its lease`, () => agent.active, 50);
const send = (reply: AgentReply) => process.send!(reply);
send({ type: 'ready' });
process.on('message', (request: AgentRequest) => {
  if (request.type === 'count') {
    void metrics.reconciles.get().then((metric) => {
      const counts: Record<string, number> = {};
      for (const v of metric.values)
        if (v.labels.controller === 'database-agent')
          counts[String(v.labels.result)] = (counts[String(v.labels.result)] ?? 0) + v.value;
      send({ type: 'count', counts });
    });
  } else if (request.type === 'stop') {
    void (async () => {
      await agent.stop();
      await bus.close();
      process.exit(0);
    })();
  }
});
