import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Agent } from './agent/agent.js';
import type { AgentClient } from './agent/agent-client.js';
import { openObjectStore } from './backups/open-object-store.js';
import type { Bus } from './bus/bus.js';
import type { KumoConfig } from './config.js';
import { LocalDriver } from './drivers/local/local-driver.js';
import { EngineCatalog } from './engines/engine-catalog.js';
import { crashPoints } from './faults/crash-points.js';
import { AgentGateway, localHost } from './gateway/agent-gateway.js';
import type { LocalHost } from './gateway/host-gateway.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { UsageReporter } from './metering/usage-reporter.js';
import { ensureServiceUser } from './system/service-user.js';

export interface AgentHostOptions {
  target: string;
  client: AgentClient;
  bus: Bus;
  metrics: Metrics;
  /** Serve the gateway endpoint (a remote agent) on config.agent's address; without: in-process only. */
  gateway: boolean;
}

/**
 * One agent with its local runtime: the engines installed on this host, the local driver, the
 * backup object store and, for an agent on its own host, the gateway endpoint the control plane
 * asks for logs and local backup files. The same in `kumo up` and `kumo agent`.
 */
export class AgentHost {
  private constructor(
    readonly agent: Agent,
    readonly host: LocalHost,
    private readonly gateway: AgentGateway | undefined,
  ) {}

  /** Whether the agent holds its target's lease now. */
  get active(): boolean {
    return this.agent.active;
  }

  static async start(config: KumoConfig, logger: Logger, options: AgentHostOptions): Promise<AgentHost> {
    const catalog = EngineCatalog.discover({
      ...(config.binaries.pgBin ? { pgBin: config.binaries.pgBin } : {}),
      path: config.binaries.searchPath,
    });
    const faults = crashPoints(config.faults);
    const driver = new LocalDriver({
      ...config.databases,
      catalog,
      user: ensureServiceUser(config.serviceUser),
      searchPath: config.binaries.searchPath,
      logger,
      crashPoints: faults,
    });
    const objectStore = await openObjectStore(config.backups.store, faults);
    const secret = randomBytes(32).toString('base64url');
    // The gateway needs the agent (to look up backups) and the agent announces the gateway with its lease.
    let gateway: AgentGateway | undefined;
    const host = { current: undefined as LocalHost | undefined };
    if (options.gateway) {
      gateway = await AgentGateway.start({
        host: {
          logs: (uid, tail) => host.current!.logs(uid, tail),
          followLogs: (uid, onLine, signal) => host.current!.followLogs(uid, onLine, signal),
          openBackup: (backup) => host.current!.openBackup(backup),
        },
        client: options.client,
        secret,
        listenHost: config.agent.gatewayHost,
        port: config.agent.gatewayPort,
        logger,
      });
    }
    const agent = new Agent(
      options.target,
      {
        client: options.client,
        objectStore,
        driver,
        catalog,
        bus: options.bus,
        metrics: options.metrics,
        logger,
        holder: await agentIdentity(config.dataDir, options.target),
        ...(gateway ? { gateway: { url: advertisedGateway(config, gateway.url), secret } } : {}),
        crashPoints: faults,
        usage: await UsageReporter.open({
          journal: join(config.dataDir, `usage-${options.target}.json`),
          sink: async (samples) => {
            const result = await options.client.reportUsage(samples);
            if (result.rejected.length > 0)
              logger.warn({ rejected: result.rejected }, 'usage of resources not on this target was refused');
          },
          logger,
          crash: faults,
          everyMs: config.usageReportMs,
        }),
      },
      { ...config.controllers, leaseTtlMs: config.leaseTtlMs },
    );
    host.current = localHost(driver, agent.backups);
    await agent.start();
    return new AgentHost(agent, host.current, gateway);
  }

  /** Stops the agent (its servers keep running) and its gateway. */
  async stop(): Promise<void> {
    await this.agent.stop();
    await this.gateway?.close();
  }
}

/**
 * Who this agent is, for its lease: kept in the data directory, so a restarted agent takes its
 * own lease back at once, while an agent with another data directory (another host) waits for it
 * to expire. The data directory's lock keeps it to one process.
 */
async function agentIdentity(dataDir: string, target: string): Promise<string> {
  const file = join(dataDir, 'agent-id');
  if (!existsSync(file))
    await writeFile(file, `${hostname()}-${randomBytes(4).toString('hex')}\n`, { flag: 'wx' }).catch(
      () => undefined,
    );
  return `${readFileSync(file, 'utf8').trim()}/${target}`;
}

/** The gateway URL the control plane is told: as configured, else the listen address (its port) at the database advertise host. */
function advertisedGateway(config: KumoConfig, listening: string): string {
  if (config.agent.gatewayUrl) return config.agent.gatewayUrl;
  const port = new URL(listening).port;
  const host =
    config.agent.gatewayHost === '0.0.0.0' || config.agent.gatewayHost === '::'
      ? config.databases.advertiseHost
      : config.agent.gatewayHost;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
