import { QUOTA_NAMES, type QuotaName } from '@kumo/api';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { SetupError } from './errors.js';
import type { S3StoreConfig } from './backups/s3-object-store.js';
import type { CrashPointSettings } from './faults/crash-points.js';

/** What `kumo up` accepts on its command line. Every option is optional; see resolveConfig for defaults. */
export interface UpOptions {
  /** Where Kumo keeps its store, tokens and managed data. Env KUMO_DATA_DIR. */
  dataDir?: string;
  /** HTTP listen address. Env KUMO_HOST. Default 127.0.0.1. */
  host?: string;
  /** HTTP port; 0 picks a free one. Env KUMO_PORT. Default 7070. */
  port?: number;
  /** An external PostgreSQL instead of the embedded one. Env KUMO_DATABASE_URL. */
  databaseUrl?: string;
  /** Directory with initdb/pg_ctl/postgres. Env KUMO_PG_BIN. Default: searched (PATH, /usr/lib/postgresql/N/bin). */
  pgBin?: string;
  /** Env KUMO_LOG_LEVEL: fatal, error, warn, info, debug, trace. Default info. */
  logLevel?: string;
  /** Address managed databases listen on. Env KUMO_DB_LISTEN_HOST. Default 127.0.0.1. */
  dbListenHost?: string;
  /** Host name clients are given for managed databases. Env KUMO_DB_ADVERTISE_HOST. Default: the listen host. */
  dbAdvertiseHost?: string;
  /** Port range for managed databases, "FROM-TO". Env KUMO_DB_PORTS. Default 20000-20999. */
  dbPorts?: string;
  /** API requests per second per token (bursts of twice that). Env KUMO_RATE_LIMIT. Default 100. */
  rateLimit?: number;
  /** Quotas of a new org, "databases=10,storageGB=100,backups=50" (a missing one: no limit). Env KUMO_DEFAULT_QUOTAS. */
  defaultQuotas?: string;
  /** NATS JetStream servers (comma-separated nats:// URLs) instead of the in-process bus. Env KUMO_NATS_URL. */
  natsUrl?: string;
  /** `kumo agent`: the target it serves. Env KUMO_TARGET. */
  target?: string;
  /** `kumo agent`: the control plane's API, one or more URLs (comma-separated). Env KUMO_API_URL. */
  apiUrl?: string;
  /** `kumo agent`: its agent token (`kumo target create` prints it). Env KUMO_AGENT_TOKEN. */
  agentToken?: string;
  /** `kumo agent`: where its gateway listens, "HOST:PORT". Env KUMO_GATEWAY_LISTEN. Default 0.0.0.0:7071. */
  gatewayListen?: string;
  /** `kumo agent`: the URL the control plane reaches its gateway at. Env KUMO_GATEWAY_URL. Default: from the listen address and the database advertise host. */
  gatewayUrl?: string;
}

/** The complete, validated configuration: built once at start and passed down. */
export interface KumoConfig {
  dataDir: string;
  http: {
    host: string;
    port: number;
    bodyLimitBytes: number;
    /** How often open streams (watch, log follow) check that their token may still read them. */
    streamRecheckMs: number;
    rateLimit: { perSecond: number; burst: number };
  };
  store: { mode: 'embedded'; dir: string } | { mode: 'external'; url: string };
  /** Where server binaries are looked for (the embedded store and the engines). */
  binaries: { pgBin: string | undefined; searchPath: string };
  /** The unprivileged account for PostgreSQL and managed servers when Kumo runs as root. */
  serviceUser: string;
  databases: {
    root: string;
    templatesRoot: string;
    listenHost: string;
    advertiseHost: string;
    portRange: readonly [number, number];
  };
  /** base64 AES-256 key for secrets at rest (KUMO_MASTER_KEY); default: <data-dir>/master.key, created once. */
  masterKey: string | undefined;
  masterKeyFile: string;
  logLevel: string;
  /** crashLoopRetryMs: the first wait before a server in a crash loop is started again (doubling). */
  controllers: { workers: number; resyncIntervalMs: number; crashLoopRetryMs: number };
  /** How long the change history behind watches is kept. */
  changeRetentionMs: number;
  /** How long Idempotency-Key results are remembered. */
  idempotencyRetentionMs: number;
  /** Kumo's own audit entries (status updates, heartbeats) are kept this many days; people's always. */
  auditSystemRetentionDays: number;
  /** Quotas of an org until an operator sets its own. */
  defaultOrgQuotas: Record<QuotaName, number | null>;
  backups: {
    store: { kind: 'filesystem'; root: string } | ({ kind: 's3' } & S3StoreConfig);
    /** Backups of a deleted database are kept this many days, listable and restorable. */
    orphanRetentionDays: number;
  };
  /** The bus: in-process (one process), or NATS JetStream (KUMO_NATS_URL) between processes. */
  bus: { kind: 'in-process' } | { kind: 'nats'; url: string };
  /** A target's lease lasts this long unless its agent renews it: the heartbeat timeout. */
  leaseTtlMs: number;
  /** How often an agent saves and reports its usage (KUMO_USAGE_REPORT_SECONDS, default 60). */
  usageReportMs: number;
  /**
   * Webhook deliveries (docs/webhooks.md): an attempt's timeout (KUMO_WEBHOOK_TIMEOUT_SECONDS, 10),
   * the first retry's wait (KUMO_WEBHOOK_RETRY_SECONDS, 10), doubling up to maxRetryMs (1 h), and
   * how long one is tried before it is Failed (KUMO_WEBHOOK_GIVE_UP_SECONDS, 86400).
   */
  webhooks: {
    timeoutMs: number;
    firstRetryMs: number;
    maxRetryMs: number;
    giveUpMs: number;
    concurrency: number;
    /** Receivers at loopback, private or link-local addresses (KUMO_WEBHOOK_ALLOW_PRIVATE=true); default refused. */
    allowPrivate: boolean;
  };
  /** `kumo agent` settings (unused by `kumo up` and `kumo server`). */
  agent: {
    target: string | undefined;
    apiUrls: string[];
    token: string | undefined;
    gatewayHost: string;
    gatewayPort: number;
    gatewayUrl: string | undefined;
  };
  /**
   * Test-only fault injection (KUMO_TEST_CRASH_AT=point[#n], KUMO_TEST_CRASH_TRACE=file): never set
   * in production; see faults/crash-points.ts.
   */
  faults: CrashPointSettings;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Resolves options over environment over defaults, validating everything. Throws SetupError
 * naming the bad setting. Pure apart from reading the home directory.
 */
export function resolveConfig(
  options: UpOptions,
  env: Readonly<Record<string, string | undefined>>,
): KumoConfig {
  const isRoot = process.getuid?.() === 0;
  const dataDir = resolve(
    options.dataDir ??
      env.KUMO_DATA_DIR ??
      (isRoot ? '/var/lib/kumo' : join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'kumo')),
  );
  const port = parse(
    'port (--port / KUMO_PORT)',
    z.coerce.number().int().min(0).max(65535),
    options.port ?? env.KUMO_PORT ?? 7070,
  );
  const host = parse(
    'host (--host / KUMO_HOST)',
    z.string().min(1),
    options.host ?? env.KUMO_HOST ?? '127.0.0.1',
  );
  const logLevel = parse(
    'log level (--log-level / KUMO_LOG_LEVEL)',
    z.enum(LOG_LEVELS),
    options.logLevel ?? env.KUMO_LOG_LEVEL ?? 'info',
  );
  const rateLimit = parse(
    'rate limit (--rate-limit / KUMO_RATE_LIMIT)',
    z.coerce.number().int().min(1).max(1_000_000),
    options.rateLimit ?? env.KUMO_RATE_LIMIT ?? 100,
  );
  const url = options.databaseUrl ?? env.KUMO_DATABASE_URL;
  const dbListenHost = parse(
    'database listen host (--db-listen-host / KUMO_DB_LISTEN_HOST)',
    z.string().min(1),
    options.dbListenHost ?? env.KUMO_DB_LISTEN_HOST ?? '127.0.0.1',
  );
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) {
    throw new SetupError(
      `KUMO_DATABASE_URL must be a postgres:// or postgresql:// URL (got "${url.replace(/:[^:@/]*@/, ':***@')}").`,
    );
  }
  const natsUrl = options.natsUrl ?? env.KUMO_NATS_URL;
  if (natsUrl !== undefined && !natsUrl.split(',').every((u) => /^(nats|tls):\/\/[^\s]+$/.test(u.trim()))) {
    throw new SetupError(`KUMO_NATS_URL must be nats:// URLs, comma-separated (got "${natsUrl}").`);
  }
  const gatewayListen = parseHostPort(
    'agent gateway listen address (--gateway-listen / KUMO_GATEWAY_LISTEN)',
    options.gatewayListen ?? env.KUMO_GATEWAY_LISTEN ?? '0.0.0.0:7071',
  );
  return {
    dataDir,
    http: {
      host,
      port,
      bodyLimitBytes: 1024 * 1024,
      streamRecheckMs: 30_000,
      rateLimit: { perSecond: rateLimit, burst: rateLimit * 2 },
    },
    store: url ? { mode: 'external', url } : { mode: 'embedded', dir: join(dataDir, 'store') },
    binaries: { pgBin: options.pgBin ?? env.KUMO_PG_BIN, searchPath: env.PATH ?? '' },
    serviceUser: 'kumo',
    databases: {
      root: join(dataDir, 'databases'),
      templatesRoot: join(dataDir, 'templates'),
      listenHost: dbListenHost,
      advertiseHost: options.dbAdvertiseHost ?? env.KUMO_DB_ADVERTISE_HOST ?? dbListenHost,
      portRange: parsePortRange(options.dbPorts ?? env.KUMO_DB_PORTS ?? '20000-20999'),
    },
    masterKey: env.KUMO_MASTER_KEY,
    masterKeyFile: join(dataDir, 'master.key'),
    logLevel,
    controllers: { workers: 2, resyncIntervalMs: 5 * 60_000, crashLoopRetryMs: 5 * 60_000 },
    changeRetentionMs: 24 * 3600_000,
    idempotencyRetentionMs: 24 * 3600_000,
    auditSystemRetentionDays: parse(
      "retention of Kumo's own audit entries (KUMO_AUDIT_SYSTEM_RETENTION_DAYS)",
      z.coerce.number().int().min(1).max(3650),
      env.KUMO_AUDIT_SYSTEM_RETENTION_DAYS ?? 7,
    ),
    backups: {
      store: backupStore(env, dataDir),
      orphanRetentionDays: parse(
        'backup retention of deleted databases (KUMO_BACKUP_RETENTION_DAYS)',
        z.coerce.number().int().min(0).max(3650),
        env.KUMO_BACKUP_RETENTION_DAYS ?? 7,
      ),
    },
    defaultOrgQuotas: parseQuotas(
      options.defaultQuotas ?? env.KUMO_DEFAULT_QUOTAS ?? 'databases=10,storageGB=100,backups=50',
    ),
    bus: natsUrl ? { kind: 'nats', url: natsUrl } : { kind: 'in-process' },
    leaseTtlMs:
      parse(
        'agent lease (heartbeat timeout) in seconds (KUMO_AGENT_LEASE_SECONDS)',
        z.coerce.number().min(2).max(600),
        env.KUMO_AGENT_LEASE_SECONDS ?? 10,
      ) * 1000,
    usageReportMs:
      parse(
        'usage report interval in seconds (KUMO_USAGE_REPORT_SECONDS)',
        z.coerce.number().min(1).max(900),
        env.KUMO_USAGE_REPORT_SECONDS ?? 60,
      ) * 1000,
    webhooks: {
      timeoutMs:
        parse(
          'webhook request timeout in seconds (KUMO_WEBHOOK_TIMEOUT_SECONDS)',
          z.coerce.number().min(0.1).max(300),
          env.KUMO_WEBHOOK_TIMEOUT_SECONDS ?? 10,
        ) * 1000,
      firstRetryMs:
        parse(
          'first webhook retry wait in seconds (KUMO_WEBHOOK_RETRY_SECONDS)',
          z.coerce.number().min(0.01).max(3600),
          env.KUMO_WEBHOOK_RETRY_SECONDS ?? 10,
        ) * 1000,
      maxRetryMs: 3600_000,
      giveUpMs:
        parse(
          'how long a webhook delivery is tried, in seconds (KUMO_WEBHOOK_GIVE_UP_SECONDS)',
          z.coerce
            .number()
            .min(1)
            .max(7 * 86_400),
          env.KUMO_WEBHOOK_GIVE_UP_SECONDS ?? 86_400,
        ) * 1000,
      concurrency: 16,
      allowPrivate:
        parse(
          'private webhook receivers (KUMO_WEBHOOK_ALLOW_PRIVATE: true or false)',
          z.enum(['true', 'false']),
          env.KUMO_WEBHOOK_ALLOW_PRIVATE ?? 'false',
        ) === 'true',
    },
    agent: {
      target: options.target ?? env.KUMO_TARGET,
      apiUrls: (options.apiUrl ?? env.KUMO_API_URL ?? '')
        .split(',')
        .map((u) => u.trim().replace(/\/+$/, ''))
        .filter(Boolean),
      token: options.agentToken ?? env.KUMO_AGENT_TOKEN,
      gatewayHost: gatewayListen.host,
      gatewayPort: gatewayListen.port,
      gatewayUrl: options.gatewayUrl ?? env.KUMO_GATEWAY_URL,
    },
    faults: {
      ...(env.KUMO_TEST_CRASH_AT ? { crashAt: parseCrashAt(env.KUMO_TEST_CRASH_AT) } : {}),
      ...(env.KUMO_TEST_CRASH_TRACE ? { traceFile: env.KUMO_TEST_CRASH_TRACE } : {}),
    },
  };
}

function parseHostPort(what: string, value: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new SetupError(`The ${what} must be HOST:PORT (got "${value}").`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

/** "point" or "point#n": die at the n-th arrival at the point (default the first). */
function parseCrashAt(value: string): { point: string; hit: number } {
  const match = /^([a-z0-9.-]+)(?:#([1-9]\d*))?$/.exec(value);
  if (!match)
    throw new SetupError(
      `Invalid KUMO_TEST_CRASH_AT (a test-only setting): "${value}" — use a crash point's name, optionally with #n for its n-th arrival.`,
    );
  return { point: match[1]!, hit: Number(match[2] ?? 1) };
}

/** The filesystem store under the data directory, or S3 when KUMO_BACKUP_S3_ENDPOINT is set. */
function backupStore(
  env: Readonly<Record<string, string | undefined>>,
  dataDir: string,
): KumoConfig['backups']['store'] {
  const endpoint = env.KUMO_BACKUP_S3_ENDPOINT;
  if (!endpoint) return { kind: 'filesystem', root: join(dataDir, 'backups') };
  const required = (name: string) => {
    const value = env[name];
    if (!value) throw new SetupError(`${name} is required when KUMO_BACKUP_S3_ENDPOINT is set.`);
    return value;
  };
  if (!/^https?:\/\//.test(endpoint)) {
    throw new SetupError(`KUMO_BACKUP_S3_ENDPOINT must be an http:// or https:// URL (got "${endpoint}").`);
  }
  return {
    kind: 's3',
    endpoint,
    region: env.KUMO_BACKUP_S3_REGION ?? 'us-east-1',
    bucket: required('KUMO_BACKUP_S3_BUCKET'),
    prefix: env.KUMO_BACKUP_S3_PREFIX ?? '',
    accessKeyId: required('KUMO_BACKUP_S3_ACCESS_KEY_ID'),
    secretAccessKey: required('KUMO_BACKUP_S3_SECRET_ACCESS_KEY'),
    forcePathStyle: (env.KUMO_BACKUP_S3_PATH_STYLE ?? 'true') !== 'false',
    ...(env.KUMO_BACKUP_S3_PART_SIZE_MB
      ? {
          partSize:
            parse(
              'S3 multipart part size (KUMO_BACKUP_S3_PART_SIZE_MB)',
              z.coerce.number().int().min(5).max(5120),
              env.KUMO_BACKUP_S3_PART_SIZE_MB,
            ) *
            1024 *
            1024,
        }
      : {}),
  };
}

function parseQuotas(value: string): Record<QuotaName, number | null> {
  const quotas: Record<QuotaName, number | null> = { databases: null, storageGB: null, backups: null };
  for (const part of value.split(',').filter(Boolean)) {
    const [name, limit] = part.split('=').map((s) => s.trim());
    if (!(QUOTA_NAMES as readonly string[]).includes(name ?? '') || !/^\d+$/.test(limit ?? '')) {
      throw new SetupError(
        `Invalid default quotas (--default-quotas / KUMO_DEFAULT_QUOTAS): "${part}" — use name=number with names ${QUOTA_NAMES.join(', ')}, e.g. databases=10,storageGB=100,backups=50.`,
      );
    }
    quotas[name as QuotaName] = Number(limit);
  }
  return quotas;
}

function parsePortRange(value: string): [number, number] {
  const match = /^(\d+)-(\d+)$/.exec(value);
  const from = Number(match?.[1]);
  const to = Number(match?.[2]);
  if (!match || from < 1024 || to > 65535 || from > to) {
    throw new SetupError(
      `Invalid database port range (--db-ports / KUMO_DB_PORTS): "${value}" — use FROM-TO within 1024-65535, e.g. 20000-20999.`,
    );
  }
  return [from, to];
}

function parse<S extends z.ZodType>(what: string, schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success)
    throw new SetupError(`Invalid ${what}: ${JSON.stringify(value)} — ${result.error.issues[0]?.message}.`);
  return result.data;
}
