import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type ServerType, serve } from '@hono/node-server';
import pg from 'pg';
import { TokenStore } from './auth/token-store.js';
import { type AdminToken, ensureAdminToken, ensureLocalTarget } from './bootstrap.js';
import { InProcessBus } from './bus/in-process-bus.js';
import type { KumoConfig } from './config.js';
import { orgCascade, projectCascade } from './controllers/cascade-reconciler.js';
import { Controller } from './controllers/runtime/controller.js';
import { StatusWriter } from './controllers/runtime/status-writer.js';
import { SetupError } from './errors.js';
import { crashPoints } from './faults/crash-points.js';
import { Agent } from './agent/agent.js';
import { StoreAgentClient } from './agent/agent-client.js';
import { LocalDriver } from './drivers/local/local-driver.js';
import { type DatabaseSpecLike, EngineCatalog } from './engines/engine-catalog.js';
import { createApp } from './http/app.js';
import { type BackupPolicy, checkPolicy } from './backups/schedule.js';
import { openObjectStore } from './backups/open-object-store.js';
import { pruneSystemAudit } from './store/audit-log.js';
import { BackupScheduler } from './backups/backup-scheduler.js';
import { Authorizer } from './auth/authorizer.js';
import { MembershipStore } from './auth/membership-store.js';
import { QuotaStore, databaseDelta } from './quotas/quota-store.js';
import { orgOfProject } from './store/resource-rows.js';
import { CredentialStore } from './secrets/credential-store.js';
import { SecretBox } from './secrets/secret-box.js';
import type { KumoRouter } from './http/router.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { OutboxRelay } from './outbox/outbox-relay.js';
import { ResourceService } from './resources/resource-service.js';
import { ChangeLog } from './store/change-log.js';
import { EmbeddedPostgres, type PostgresConnection } from './store/embedded-postgres.js';
import { EventStore } from './store/event-store.js';
import { migrate } from './store/migrate.js';
import { Notifier } from './store/notifier.js';
import { findPostgresBinaries } from './store/postgres-binaries.js';
import { ResourceStore } from './store/resource-store.js';
import { StoreSupervisor } from './store/store-supervisor.js';
import { ensureServiceUser } from './system/service-user.js';
import { KUMO_VERSION } from './version.js';

const HOUSEKEEPING_INTERVAL_MS = 60_000;
const STORE_CONNECT_TIMEOUT_MS = 5000;

/**
 * A running single-node Kumo: store, API, bus, outbox relay and controllers in one process.
 * start() is idempotent over restarts on the same data directory: everything is found as it was.
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
  ) {}

  static async start(config: KumoConfig, logger: Logger): Promise<Kumo> {
    const cleanup: Array<() => Promise<void>> = [];
    const stop = async () => {
      for (const step of cleanup.reverse())
        await step().catch((err) => logger.warn({ err: String(err) }, 'shutdown step failed'));
    };
    try {
      await mkdir(config.dataDir, { recursive: true, mode: 0o711 });
      // Traversable but not listable: the service user reaches its own subdirectories, nothing else.
      await chmod(config.dataDir, 0o711);
      const lock = await takeLock(config.dataDir);
      cleanup.push(lock);
      const connection = await startStore(config, logger, cleanup);
      const pool = new pg.Pool({
        ...(typeof connection === 'string' ? { connectionString: connection } : connection),
        max: 20,
        // While the store is away a request fails fast (503) instead of waiting for a connection.
        connectionTimeoutMillis: STORE_CONNECT_TIMEOUT_MS,
      });
      pool.on('error', (err) => logger.warn({ err: err.message }, 'idle store connection failed'));
      // A connection lost while checked out (e.g. mid-transaction) fails its queries, which report it;
      // without a listener its 'error' event would end the process.
      pool.on('connect', (client) =>
        client.on('error', (err) => logger.debug({ err: err.message }, 'store connection lost')),
      );
      cleanup.push(() => pool.end());
      await migrate(pool);

      const notifier = new Notifier(connection, ['kumo_changes', 'kumo_outbox'], logger);
      await notifier.start();
      cleanup.push(() => notifier.close());

      const metrics = new Metrics();
      const store = new ResourceStore(pool);
      const events = new EventStore(pool);
      const changes = new ChangeLog(pool);
      const tokens = new TokenStore(pool);
      const memberships = new MembershipStore(pool, tokens);
      const quotas = new QuotaStore(pool, config.defaultOrgQuotas);
      const authorizer = new Authorizer(pool, memberships);
      const statusWriter = new StatusWriter(store, events);
      const bus = new InProcessBus(logger);
      cleanup.push(() => bus.close());

      const controllers = [
        orgCascade(store, statusWriter, async (org) => {
          await memberships.forgetOrg(org.metadata.name);
          await quotas.forget('org', org.metadata.name);
        }),
        projectCascade(store, statusWriter, async (project) => {
          await memberships.forgetProject((project.spec as { org: string }).org, project.metadata.name);
          await quotas.forget('project', project.metadata.name);
        }),
      ].map(
        (reconciler) =>
          new Controller(
            reconciler,
            {
              bus,
              metrics,
              logger,
              listKeys: () => store.keys(reconciler.kind),
              reportTerminalError: (key, err) => statusWriter.terminalError(key, err),
            },
            config.controllers,
          ),
      );
      for (const controller of controllers) controller.start();
      cleanup.push(async () => void (await Promise.all(controllers.map((c) => c.stop()))));

      const relay = new OutboxRelay(pool, bus, notifier, logger);
      relay.start();
      cleanup.push(() => relay.stop());

      const housekeeping = setInterval(() => {
        void events
          .prune({ goneAfterMs: 3600_000, maxAgeMs: 30 * 86_400_000 })
          .catch((err) => logger.warn({ err: String(err) }, 'event pruning failed'));
        void changes
          .compact(config.changeRetentionMs)
          .catch((err) => logger.warn({ err: String(err) }, 'change log compaction failed'));
        void pool
          .query('DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)', [
            config.idempotencyRetentionMs / 1000,
          ])
          .catch((err) => logger.warn({ err: String(err) }, 'idempotency cleanup failed'));
        void pruneSystemAudit(pool, config.auditSystemRetentionDays * 86_400_000).catch((err) =>
          logger.warn({ err: String(err) }, "pruning Kumo's own audit entries failed"),
        );
      }, HOUSEKEEPING_INTERVAL_MS);
      cleanup.push(async () => clearInterval(housekeeping));

      const adminToken = await ensureAdminToken(tokens, config.dataDir);
      await ensureLocalTarget(store, statusWriter);

      const catalog = EngineCatalog.discover({
        ...(config.binaries.pgBin ? { pgBin: config.binaries.pgBin } : {}),
        path: config.binaries.searchPath,
      });
      const credentials = new CredentialStore(
        pool,
        await SecretBox.load(config.masterKey, config.masterKeyFile),
      );
      const faults = crashPoints(config.faults);
      const driver = new LocalDriver({
        ...config.databases,
        catalog,
        user: ensureServiceUser(config.serviceUser),
        searchPath: config.binaries.searchPath,
        logger,
        crashPoints: faults,
      });
      const objectStore = openObjectStore(config.backups.store, faults);
      const agent = new Agent(
        'local',
        {
          client: new StoreAgentClient(store, statusWriter, credentials, 'system:agent:local'),
          objectStore,
          driver,
          catalog,
          bus,
          metrics,
          logger,
          crashPoints: faults,
        },
        config.controllers,
      );
      await agent.start();
      cleanup.push(() => agent.stop());

      const asDatabase = (spec: Record<string, unknown>) => spec as unknown as DatabaseSpecLike;
      const service = new ResourceService(store, events, {
        specChecks: {
          Database: (spec) => [
            ...catalog.validate(asDatabase(spec)),
            ...checkPolicy(spec.backupPolicy as BackupPolicy | undefined),
          ],
        },
        references: {
          Database: (spec, project) => [
            {
              field: 'spec.target',
              key: { kind: 'Target', project: '', name: String(spec.target ?? 'local') },
            },
            ...(spec.restoreFrom
              ? [
                  {
                    field: 'spec.restoreFrom.backup',
                    key: {
                      kind: 'Backup',
                      project,
                      name: String((spec.restoreFrom as { backup: string }).backup),
                    },
                  },
                ]
              : []),
          ],
          Backup: (spec, project) => [
            { field: 'spec.database', key: { kind: 'Database', project, name: String(spec.database) } },
          ],
        },
        describeChange: {
          Database: (before, after) => catalog.describeChange(asDatabase(before), asDatabase(after)),
        },
        admission: {
          Database: (project) => async (client, before, spec) => {
            const org = await orgOfProject(client, project);
            if (org) await quotas.admit(client, org, project, databaseDelta(before?.spec, spec));
          },
          Backup: (project) => async (client, before) => {
            const org = await orgOfProject(client, project);
            if (org && !before) await quotas.admit(client, org, project, { backups: 1 });
          },
        },
      });
      const backupScheduler = new BackupScheduler(store, service, statusWriter, logger, {
        intervalMs: 15_000,
        orphanRetentionDays: config.backups.orphanRetentionDays,
      });
      backupScheduler.start();
      cleanup.push(() => backupScheduler.stop());

      const router = createApp({
        pool,
        service,
        tokens,
        memberships,
        quotas,
        authorizer,
        backups: agent.backups,
        metrics,
        logger,
        store,
        changes,
        notifier,
        catalog,
        credentials,
        driver,
        bodyLimitBytes: config.http.bodyLimitBytes,
        streamRecheckMs: config.http.streamRecheckMs,
        rateLimit: config.http.rateLimit,
        version: KUMO_VERSION,
      });
      const server = await listen(router.app.fetch, config.http.host, config.http.port);
      cleanup.push(() => closeServer(server));
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      logger.info({ url: `http://${host}:${address.port}` }, 'kumo is up');
      return new Kumo(
        router.app,
        `http://${host}:${address.port}`,
        adminToken,
        stop,
        router.table,
        backupScheduler,
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
async function startStore(
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
async function takeLock(dataDir: string): Promise<() => Promise<void>> {
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

function listen(
  fetch: (req: Request) => Response | Promise<Response>,
  hostname: string,
  port: number,
): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, () => resolve(server));
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new SetupError(
              `Port ${port} on ${hostname} is already in use. Pass --port (or KUMO_PORT) to choose another.`,
            )
          : err,
      );
    });
  });
}

function closeServer(server: ServerType): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Watches are long-lived: end them so close() can finish.
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  });
}
