import { mkdir } from 'node:fs/promises';
import { ensureAdminToken } from './bootstrap.js';
import { HttpAgentClient } from './agent/http-agent-client.js';
import { AgentHost } from './agent-host.js';
import { openBus } from './bus/open-bus.js';
import { type KumoConfig, type UpOptions, resolveConfig } from './config.js';
import { ControlPlane } from './control-plane.js';
import { KumoError, SetupError } from './errors.js';
import { takeLock } from './kumo.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { adminTokenLines } from './up.js';

/**
 * `kumo server`: one control-plane replica (API, outbox relay, controllers) on an external store.
 * Any number may run on one store behind a load balancer. Runs until SIGINT/SIGTERM; returns the
 * exit code (2 when it could not start).
 */
export async function runServer(
  options: UpOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  return foreground('kumo server', options, env, async (config, logger) => {
    if (config.store.mode !== 'external')
      throw new SetupError(
        'kumo server needs the shared store: set KUMO_DATABASE_URL (or --database-url) to a PostgreSQL all replicas reach. For one machine, use kumo up.',
      );
    if (!config.masterKey)
      throw new SetupError(
        'kumo server needs KUMO_MASTER_KEY (base64 of 32 random bytes, e.g. `openssl rand -base64 32`), the same on every replica: it encrypts the credentials in the store.',
      );
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    let admin: Awaited<ReturnType<typeof ensureAdminToken>> | undefined;
    const controlPlane = await ControlPlane.start(config, logger, {
      connection: config.store.url,
      bootstrap: async ({ tokens }) => void (admin = await ensureAdminToken(tokens, config.dataDir)),
    });
    return {
      lines: [`API:         ${controlPlane.url}`, ...adminTokenLines(admin!, controlPlane.url)],
      stop: () => controlPlane.stop(),
    };
  });
}

/**
 * `kumo agent --target NAME --api URL`: the agent of one target on this host. It talks to the
 * control plane only through the HTTP API (its agent token) and the bus (KUMO_NATS_URL), and
 * serves the gateway the control plane asks for logs and local backup files.
 */
export async function runAgent(
  options: UpOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  return foreground('kumo agent', options, env, async (config, logger) => {
    const { target, apiUrls, token } = config.agent;
    if (!target) throw new SetupError('Say which target this agent serves: --target NAME (or KUMO_TARGET).');
    if (apiUrls.length === 0)
      throw new SetupError('Say where the control plane is: --api URL[,URL…] (or KUMO_API_URL).');
    if (!token)
      throw new SetupError(
        `Give the agent its token: KUMO_AGENT_TOKEN (kumo target token ${target} prints a new one).`,
      );
    await mkdir(config.dataDir, { recursive: true, mode: 0o711 });
    const unlock = await takeLock(config.dataDir);
    const bus = await openBus(config, logger, { name: `agent-${target}`, durable: true, targets: [target] });
    if (config.bus.kind === 'in-process')
      logger.warn(
        { target },
        'no KUMO_NATS_URL: this agent hears of changes only through its periodic resync (every 15 s)',
      );
    const controllers =
      config.bus.kind === 'in-process'
        ? { ...config.controllers, resyncIntervalMs: 15_000 }
        : config.controllers;
    const host = await AgentHost.start({ ...config, controllers }, logger, {
      target,
      client: new HttpAgentClient({ apiUrls, token, target }),
      bus,
      metrics: new Metrics(),
      gateway: true,
    });
    return {
      lines: [
        `Target:      ${target}`,
        `API:         ${apiUrls.join(', ')}`,
        `Data:        ${config.dataDir}`,
      ],
      stop: async () => {
        await host.stop();
        await bus.close();
        await unlock();
      },
    };
  });
}

/** Starts something in the foreground, prints where it is, and stops it cleanly on SIGINT/SIGTERM. */
async function foreground(
  name: string,
  options: UpOptions,
  env: Readonly<Record<string, string | undefined>>,
  start: (config: KumoConfig, logger: Logger) => Promise<{ lines: string[]; stop: () => Promise<void> }>,
): Promise<number> {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  let running: { lines: string[]; stop: () => Promise<void> };
  const stopRequested = new Promise<void>((resolve) => {
    process.on('SIGINT', resolve);
    process.on('SIGTERM', resolve);
  });
  try {
    const config = resolveConfig(options, env);
    running = await start(config, createLogger(config.logLevel));
  } catch (err) {
    if (err instanceof KumoError) {
      console.error(`${name}: ${err.message}`);
      return 2;
    }
    throw err;
  }
  console.log(`${name} is running.`);
  for (const line of running.lines) console.log(`  ${line}`);
  await stopRequested;
  console.log(`Stopping ${name}…`);
  await running.stop();
  console.log(`${name} stopped.`);
  return 0;
}
