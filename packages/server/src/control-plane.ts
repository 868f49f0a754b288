import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { type ServerType, serve } from '@hono/node-server';
import pg from 'pg';
import { TokenStore } from './auth/token-store.js';
import type { Bus } from './bus/bus.js';
import { NO_TARGET } from './bus/nats-bus.js';
import { openBus } from './bus/open-bus.js';
import type { KumoConfig } from './config.js';
import { orgCascade, projectCascade } from './controllers/cascade-reconciler.js';
import { Controller } from './controllers/runtime/controller.js';
import { StatusWriter } from './controllers/runtime/status-writer.js';
import { TargetHealth } from './controllers/target-health.js';
import { ConflictError, SetupError } from './errors.js';
import { type DatabaseSpecLike, EngineCatalog } from './engines/engine-catalog.js';
import { type InProcessAgent, RoutedGateway } from './gateway/routed-gateway.js';
import { createApp } from './http/app.js';
import { type BackupPolicy, checkPolicy } from './backups/schedule.js';
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
import { Placement } from './resources/placement.js';
import { ResourceService } from './resources/resource-service.js';
import { ChangeLog } from './store/change-log.js';
import type { PostgresConnection } from './store/embedded-postgres.js';
import { EventStore } from './store/event-store.js';
import { migrate } from './store/migrate.js';
import { isStoreUnavailable } from './store/store-errors.js';
import { Notifier } from './store/notifier.js';
import { ResourceStore } from './store/resource-store.js';
import { LeaseStore } from './store/target-leases.js';
import { TargetScope } from './store/target-scope.js';
import { BudgetWatcher } from './metering/budget-watcher.js';
import { InvoiceCloser } from './metering/invoice-closer.js';
import { InvoiceStore } from './metering/invoice-store.js';
import { PriceBook } from './metering/price-book.js';
import { UsageLedger } from './metering/usage-ledger.js';
import { KUMO_VERSION } from './version.js';
import { WebhookPipeline } from './webhooks/webhook-pipeline.js';
import { WebhookReconciler } from './webhooks/webhook-reconciler.js';
import { webhookSpecCheck } from './webhooks/webhook-spec.js';

const HOUSEKEEPING_INTERVAL_MS = 60_000;
const STORE_CONNECT_TIMEOUT_MS = 5000;

/** What the control plane shares with agents running in its own process (`kumo up`). */
export interface ControlPlaneParts {
  pool: pg.Pool;
  store: ResourceStore;
  statusWriter: StatusWriter;
  credentials: CredentialStore;
  leases: LeaseStore;
  tokens: TokenStore;
  bus: Bus;
  metrics: Metrics;
  ledger: UsageLedger;
}

export interface ControlPlaneOptions {
  /** The store's connection (embedded or external). */
  connection: PostgresConnection | string;
  /** Starts agents in this process once the store is ready, before the API listens (`kumo up`). */
  agents?: (parts: ControlPlaneParts) => Promise<ReadonlyMap<string, InProcessAgent>>;
  /** Runs once the store is migrated, before anything else starts (bootstrap of `kumo up`). */
  bootstrap?: (parts: ControlPlaneParts) => Promise<void>;
}

/**
 * The stateless control plane (`kumo server`; and the API half of `kumo up`): API, outbox relay,
 * control-plane controllers (cascades, backup schedules, target health) on one store. It holds no
 * runtime driver, discovers no engines and takes no backups: what hosts can run it learns from
 * their agents' Target status, and what only a host can answer it asks through the gateway. Any
 * number of replicas may run on one store; each of its controllers is safe with several.
 */
export class ControlPlane {
  private constructor(
    readonly app: KumoRouter['app'],
    readonly url: string,
    readonly parts: ControlPlaneParts,
    readonly routeTable: KumoRouter['table'],
    readonly backupScheduler: BackupScheduler,
    /** The budget checks (run() checks every budget now). */
    readonly budgetWatcher: BudgetWatcher,
    private readonly cleanup: Array<() => Promise<void>>,
    private readonly logger: Logger,
  ) {}

  static async start(
    config: KumoConfig,
    logger: Logger,
    options: ControlPlaneOptions,
  ): Promise<ControlPlane> {
    const cleanup: Array<() => Promise<void>> = [];
    try {
      const { connection } = options;
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
      await migrate(pool).catch((err: unknown) => {
        throw isStoreUnavailable(err)
          ? new SetupError(
              `Cannot reach the store (${(err as Error).message}). Start PostgreSQL, or check KUMO_DATABASE_URL.`,
            )
          : err;
      });

      const notifier = new Notifier(connection, ['kumo_changes', 'kumo_outbox', 'kumo_webhooks'], logger);
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
      const box = await SecretBox.load(config.masterKey, config.masterKeyFile);
      const credentials = new CredentialStore(pool, box);
      const leases = new LeaseStore(pool, box);
      // Each replica hears every control-plane nudge (its controllers' queues are its own).
      const bus = await openBus(config, logger, {
        name: `control-plane-${hostname()}-${process.pid}`,
        durable: false,
        targets: [NO_TARGET],
      });
      cleanup.push(() => bus.close());
      const parts: ControlPlaneParts = {
        pool,
        store,
        statusWriter,
        credentials,
        leases,
        tokens,
        bus,
        metrics,
        ledger: new UsageLedger(pool),
      };
      await options.bootstrap?.(parts);

      // Changes and events to webhooks (docs/webhooks.md); receivers never hold up a write.
      const webhooks = new WebhookPipeline(pool, box, notifier, logger, {
        ...config.webhooks,
        userAgent: `Kumo-Webhooks/${KUMO_VERSION}`,
      });
      const controllers = [
        orgCascade(store, statusWriter, async (org) => {
          await memberships.forgetOrg(org.metadata.name);
          await quotas.forget('org', org.metadata.name);
        }),
        new WebhookReconciler(store, statusWriter, webhooks.secrets),
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

      webhooks.start();
      cleanup.push(() => webhooks.stop());

      const relay = new OutboxRelay(pool, bus, notifier, logger, {
        onPublished: (count) => metrics.outboxPublished.inc(count),
      });
      relay.start();
      cleanup.push(() => relay.stop());

      const health = new TargetHealth(store, statusWriter, leases, logger);
      health.start();
      cleanup.push(() => health.stop());

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

      const inProcess = (await options.agents?.(parts)) ?? new Map();
      const placement = new Placement(store, leases);
      // What holds on every target; whether a target has the engine and version, placement checks.
      const anywhere = EngineCatalog.offering([]);
      const asDatabase = (spec: Record<string, unknown>) => spec as unknown as DatabaseSpecLike;
      const service = new ResourceService(store, events, {
        specChecks: {
          Webhook: webhookSpecCheck(config.webhooks.allowPrivate),
          Database: (spec) => [
            ...anywhere.validate(asDatabase(spec), { installed: false }),
            ...checkPolicy(spec.backupPolicy as BackupPolicy | undefined),
          ],
        },
        place: { Database: (spec) => placement.place(spec) },
        beforeDelete: {
          // Its users go first: its agent sees a user only while the user's database is there, and
          // keeps the database until they are gone (a crash in between leaves only users deleted).
          Database: async (key) => {
            const users = await store.findKeys({
              kind: 'DatabaseUser',
              specField: 'database',
              equals: key.name,
            });
            for (const user of users.filter((u) => u.project === key.project))
              await store.delete(user, { actor: 'system:controllers' }).catch((err: { code?: string }) => {
                if (err.code !== 'not-found') throw err;
              });
          },
          // Its databases could never finish their own deletion without an agent.
          Target: async (key) => {
            const on = await store.findKeys({ kind: 'Database', specField: 'target', equals: key.name });
            if (on.length > 0)
              throw new ConflictError(
                `Target ${key.name} still runs ${on.length} database(s) (${on
                  .slice(0, 5)
                  .map((k) => `${k.project}/${k.name}`)
                  .join(', ')}${on.length > 5 ? ', …' : ''}). Delete them first, then the target.`,
              );
          },
        },
        afterDelete: { Target: (key) => tokens.revokeAll({ principal: `agent:${key.name}` }) },
        references: {
          Database: (spec, project) => [
            { field: 'spec.target', key: { kind: 'Target', project: '', name: String(spec.target) } },
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
          DatabaseUser: (spec, project) => [
            { field: 'spec.database', key: { kind: 'Database', project, name: String(spec.database) } },
          ],
        },
        describeChange: {
          Database: (before, after) => anywhere.describeChange(asDatabase(before), asDatabase(after)),
        },
        admission: {
          Database: (project) => async (client, before, spec) => {
            if (!before) await placement.admit(client, spec);
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
      const prices = new PriceBook(pool);
      const invoices = new InvoiceStore({ pool, ledger: parts.ledger, prices });
      const invoiceCloser = new InvoiceCloser(invoices, logger);
      invoiceCloser.start();
      cleanup.push(() => invoiceCloser.stop());
      const budgets = new BudgetWatcher({
        pool,
        ledger: parts.ledger,
        prices,
        store,
        status: statusWriter,
        logger,
      });
      budgets.start();
      cleanup.push(() => budgets.stop());
      // A budget set or changed (an org's or project's spec) is checked at once.
      for (const kind of ['Org', 'Project']) {
        const unsubscribe = bus.subscribe(kind, async (m) => {
          if (m.action !== 'update-status') budgets.nudge();
        });
        cleanup.push(async () => unsubscribe());
      }

      const router = createApp({
        pool,
        service,
        tokens,
        memberships,
        quotas,
        authorizer,
        gateway: new RoutedGateway(leases, inProcess),
        engines: placement,
        agents: {
          store,
          statusWriter,
          credentials,
          leases,
          scope: new TargetScope(pool),
          ledger: parts.ledger,
        },
        billing: { pool, ledger: parts.ledger, prices, invoices },
        webhooks: {
          pool,
          service,
          secrets: webhooks.secrets,
          deliveries: webhooks.deliveries,
          eventLog: webhooks.eventLog,
          ping: (webhook) => webhooks.ping(webhook),
          notifier,
          streamRecheckMs: config.http.streamRecheckMs,
        },
        metrics,
        bus,
        logger,
        store,
        changes,
        notifier,
        credentials,
        bodyLimitBytes: config.http.bodyLimitBytes,
        streamRecheckMs: config.http.streamRecheckMs,
        rateLimit: config.http.rateLimit,
        version: KUMO_VERSION,
      });
      const server = await listen(router.app.fetch, config.http.host, config.http.port);
      cleanup.push(() => closeServer(server));
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `http://${host}:${address.port}`;
      logger.info({ url }, 'control plane listening');
      return new ControlPlane(
        router.app,
        url,
        parts,
        router.table,
        backupScheduler,
        budgets,
        cleanup,
        logger,
      );
    } catch (err) {
      await stopAll(cleanup, logger);
      throw err;
    }
  }

  /** Stops accepting requests, lets work in flight finish, closes the store connections. */
  stop(): Promise<void> {
    return stopAll(this.cleanup, this.logger);
  }
}

async function stopAll(cleanup: Array<() => Promise<void>>, logger: Logger): Promise<void> {
  for (const step of cleanup.splice(0).reverse())
    await step().catch((err) => logger.warn({ err: String(err) }, 'shutdown step failed'));
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
