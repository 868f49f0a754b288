import { type Condition, isConditionTrue } from '@kumo/api';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AdminToken, ensureAdminToken, ensureLocalTarget } from './bootstrap.js';
import type { KumoConfig } from './config.js';
import { ControlPlane } from './control-plane.js';
import { openBus } from './bus/open-bus.js';
import { SetupError } from './errors.js';
import { StoreAgentClient } from './agent/agent-client.js';
import { AgentHost } from './agent-host.js';
import type { BackupScheduler } from './backups/backup-scheduler.js';
import type { BudgetWatcher } from './metering/budget-watcher.js';
import type { KumoRouter } from './http/router.js';
import type { Logger } from './logger.js';
import { EmbeddedPostgres, type PostgresConnection } from './store/embedded-postgres.js';
import type { ResourceStore } from './store/resource-store.js';
import { findPostgresBinaries } from './store/postgres-binaries.js';
import { StoreSupervisor } from './store/store-supervisor.js';
import { ensureServiceUser } from './system/service-user.js';

/**
 * A running single-node Kumo (`kumo up`): the control plane and the agent of target "local" in one
 * process, joined by the in-process bus (or NATS, with KUMO_NATS_URL) — the same parts as
 * `kumo server` and `kumo agent`, composed. start() is idempotent over restarts on the same data
 * directory: everything is found as it was. Two of them on one external store share the work of
 * the control plane, and only one at a time acts as the agent of "local" (its lease).
 */
export class Kumo {
  private constructor(
    /** The HTTP API; `app.request()` serves a request in-process. */
    readonly app: KumoRouter['app'],
    readonly url: string,
    readonly adminToken: AdminToken,
    private readonly stopAll: () => Promise<void>,
    /** Every route with the access rule it declared. */
    readonly routeTable: KumoRouter['table'],
    /** The backup clock (tick() runs one pass now). */
    readonly backupScheduler: BackupScheduler,
    /** The budget checks (run() checks every budget now). */
    readonly budgetWatcher: BudgetWatcher,
  ) {}

  static async start(config: KumoConfig, logger: Logger): Promise<Kumo> {
    const cleanup: Array<() => Promise<void>> = [];
    const stop = async () => {
      for (const step of cleanup.splice(0).reverse())
        await step().catch((err) => logger.warn({ err: String(err) }, 'shutdown step failed'));
    };
    try {
      await mkdir(config.dataDir, { recursive: true, mode: 0o711 });
      // Traversable but not listable: the service user reaches its own subdirectories, nothing else.
      await chmod(config.dataDir, 0o711);
      cleanup.push(await takeLock(config.dataDir));
      const connection = await startStore(config, logger, cleanup);
      let adminToken: AdminToken | undefined;
      let local: AgentHost | undefined;
      let store: ResourceStore | undefined;
      const stopping: { controlPlane?: ControlPlane } = {};
      // The agent stops first (its reconciles in flight still reach the store), then the control plane.
      cleanup.push(async () => void (await stopping.controlPlane?.stop()));
      cleanup.push(async () => void (await local?.stop()));
      const controlPlane = await ControlPlane.start(config, logger, {
        connection,
        bootstrap: async ({ tokens, store, statusWriter }) => {
          adminToken = await ensureAdminToken(tokens, config.dataDir);
          await ensureLocalTarget(store, statusWriter);
        },
        agents: async (parts) => {
          // With NATS the agent reads its own durable consumer, as a `kumo agent` would.
          const bus =
            config.bus.kind === 'in-process'
              ? parts.bus
              : await openBus(config, logger, { name: 'agent-local', durable: true, targets: ['local'] });
          if (bus !== parts.bus) cleanup.push(() => bus.close());
          store = parts.store;
          local = await AgentHost.start(config, logger, {
            target: 'local',
            client: new StoreAgentClient(
              parts.store,
              parts.statusWriter,
              parts.credentials,
              parts.leases,
              'local',
              parts.ledger,
            ),
            bus,
            metrics: parts.metrics,
            gateway: false,
          });
          return new Map([['local', local]]);
        },
      });
      stopping.controlPlane = controlPlane;
      await localTargetReady(store!, logger);
      if (config.store.mode === 'external' && config.bus.kind === 'in-process')
        logger.info(
          'external store with the in-process bus: another Kumo on the same store hears of changes made here only on its periodic resync; set KUMO_NATS_URL to run several (docs/distributed.md)',
        );
      logger.info({ url: controlPlane.url }, 'kumo is up');
      return new Kumo(
        controlPlane.app,
        controlPlane.url,
        adminToken!,
        stop,
        controlPlane.routeTable,
        controlPlane.backupScheduler,
        controlPlane.budgetWatcher,
      );
    } catch (err) {
      await stop();
      throw err;
    }
  }

  /** Graceful: stops accepting requests, lets reconciles in flight finish, then stops the store. */
  stop(): Promise<void> {
    return this.stopAll();
  }
}

/**
 * The store's connection. An embedded store is started and supervised (restarted whenever its
 * server dies) until cleanup stops both; an external one is only connected to.
 */
export async function startStore(
  config: KumoConfig,
  logger: Logger,
  cleanup: Array<() => Promise<void>>,
): Promise<PostgresConnection | string> {
  if (config.store.mode === 'external') return config.store.url;
  const binaries = findPostgresBinaries({
    ...(config.binaries.pgBin ? { pgBin: config.binaries.pgBin } : {}),
    path: config.binaries.searchPath,
  });
  const embedded = new EmbeddedPostgres({
    dir: config.store.dir,
    binaries,
    user: ensureServiceUser(config.serviceUser),
  });
  const connection = await embedded.start();
  const supervisor = new StoreSupervisor(embedded, logger);
  supervisor.start();
  cleanup.push(async () => {
    await supervisor.stop();
    await embedded.stop();
  });
  logger.info({ binDir: binaries.binDir, version: binaries.majorVersion }, 'embedded store started');
  return connection;
}

/** One `kumo up` per data directory. A lock left by a process that died is taken over. */
export async function takeLock(dataDir: string): Promise<() => Promise<void>> {
  const file = join(dataDir, 'kumo.pid');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw new SetupError(
        `Another Kumo (pid ${pid}) is running on ${dataDir}. Stop it first, or pass another --data-dir.`,
      );
    }
  }
  await writeFile(file, String(process.pid));
  return () => rm(file, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How long `kumo up` waits for its own target to be Ready before it says it is up anyway. */
const LOCAL_TARGET_WAIT_MS = 30_000;

/**
 * Kumo is up when its own agent serves and the control plane has seen it: a database created the
 * moment `kumo up` says so is placed, not refused for want of a connected agent. An agent that
 * must wait (a lease a killed Kumo still holds) is said so in the log, and Kumo starts anyway.
 */
async function localTargetReady(store: ResourceStore, logger: Logger): Promise<void> {
  const deadline = Date.now() + LOCAL_TARGET_WAIT_MS;
  while (Date.now() < deadline) {
    const target = await store.get({ kind: 'Target', project: '', name: 'local' });
    if (isConditionTrue(target?.status.conditions as Condition[] | undefined, 'Ready')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  logger.warn('the local target is not Ready yet: databases are placed once its agent serves it');
}
