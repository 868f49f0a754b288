import { type Command, InvalidArgumentError } from 'commander';
import type { Runtime } from '../core/runtime.js';

type Options = Record<string, string | number | undefined>;

/**
 * The programs that run Kumo itself: `kumo up` (everything in one process), `kumo server` (a
 * control-plane replica) and `kumo agent` (the agent of one target). The server is loaded only by
 * these commands (a chunk of the bundle of its own).
 */
const PROGRAMS = ['up', 'server', 'agent'];

/** Whether command is one of Kumo's own long-running programs rather than a client command. */
export function runsKumo(command: Command): boolean {
  return command.parent?.parent === null && PROGRAMS.includes(command.name());
}

export function registerServeCommands(program: Command, runtime: Runtime): void {
  const up = program
    .command('up')
    .description(
      'Run Kumo on this machine: an embedded store, the API, the bus, the controllers and the local agent, in one process.',
    );
  dataDir(up);
  http(up);
  store(up);
  databases(up);
  up.option('--nats-url <urls>', 'NATS JetStream instead of the in-process bus (env KUMO_NATS_URL)');
  up.addHelpText(
    'after',
    "\nExamples:\n  kumo up\n  kumo up --data-dir /tmp/kumo2 --port 7071\n  KUMO_DATABASE_URL=postgres://kumo@db/kumo kumo up\n\nBackups go to <data-dir>/backups, or to S3 with KUMO_BACKUP_S3_ENDPOINT, _BUCKET, _ACCESS_KEY_ID,\n_SECRET_ACCESS_KEY (and _REGION, _PREFIX, _PATH_STYLE, _PART_SIZE_MB); see docs/backups.md.\nRetention: KUMO_BACKUP_RETENTION_DAYS (backups of deleted databases, 7), KUMO_AUDIT_SYSTEM_RETENTION_DAYS\n(Kumo's own audit entries, 7).",
  );
  up.action(async (options: Options) => {
    const { runUp } = await import('@kumo/server');
    process.exitCode = await runUp(options, runtime.env);
  });

  const server = program
    .command('server')
    .description(
      'Run one control-plane replica: the API, the outbox relay and the controllers, on an external store. Run as many as you like behind a load balancer; no databases run here.',
    );
  dataDir(server);
  http(server);
  store(server);
  server
    .option('--nats-url <urls>', 'NATS JetStream servers, comma-separated (env KUMO_NATS_URL)')
    .addHelpText(
      'after',
      '\nNeeds KUMO_DATABASE_URL (the shared store) and KUMO_MASTER_KEY (the same on every replica).\n\nExample:\n  KUMO_DATABASE_URL=postgres://kumo@db/kumo KUMO_MASTER_KEY=… KUMO_NATS_URL=nats://nats:4222 kumo server --host 0.0.0.0\n\nSee docs/distributed.md.',
    )
    .action(async (options: Options) => {
      const { runServer } = await import('@kumo/server');
      process.exitCode = await runServer(options, runtime.env);
    });

  const agent = program
    .command('agent')
    .description(
      "Run the agent of one target on this host: it runs the target's databases and reports their status, talking to the control plane through its API and NATS.",
    )
    .option('--target <name>', 'the target it serves (env KUMO_TARGET)')
    .option('--api <urls>', "the control plane's API, one URL or several, comma-separated (env KUMO_API_URL)")
    .option('--nats-url <urls>', 'NATS JetStream servers, comma-separated (env KUMO_NATS_URL)')
    .option(
      '--gateway-listen <host:port>',
      'where it answers the control plane for logs and backup files (env KUMO_GATEWAY_LISTEN; default 0.0.0.0:7071)',
    )
    .option(
      '--gateway-url <url>',
      'the URL the control plane reaches that at (env KUMO_GATEWAY_URL; default: the listen port at the database advertise host)',
    );
  dataDir(agent);
  databases(agent);
  agent
    .option(
      '--pg-bin <dir>',
      'directory with the PostgreSQL server binaries (env KUMO_PG_BIN; default: searched)',
    )
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace (env KUMO_LOG_LEVEL; default info)')
    .addHelpText(
      'after',
      '\nIts token is KUMO_AGENT_TOKEN (kumo target create / kumo target token print one).\n\nExample:\n  KUMO_AGENT_TOKEN=kumo_… kumo agent --target b --api http://cp1:7070,http://cp2:7070 \\\n    --nats-url nats://nats:4222 --db-listen-host 0.0.0.0 --db-advertise-host b.example.net\n\nSee docs/distributed.md.',
    )
    .action(async (options: Options & { api?: string }) => {
      const { runAgent } = await import('@kumo/server');
      const { api, ...rest } = options;
      process.exitCode = await runAgent({ ...rest, ...(api ? { apiUrl: api } : {}) }, runtime.env);
    });
}

function dataDir(command: Command): void {
  command.option(
    '--data-dir <dir>',
    'where Kumo keeps its state (env KUMO_DATA_DIR; default ~/.local/share/kumo, /var/lib/kumo as root)',
  );
}

function http(command: Command): void {
  command
    .option('--host <host>', 'HTTP listen address (env KUMO_HOST; default 127.0.0.1)')
    .option('--port <port>', 'HTTP port, 0 for any free port (env KUMO_PORT; default 7070)', parsePort)
    .option(
      '--rate-limit <n>',
      'API requests per second per token, bursts of twice that (env KUMO_RATE_LIMIT; default 100)',
      (v: string) => Number(v),
    )
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace (env KUMO_LOG_LEVEL; default info)')
    .option(
      '--default-quotas <quotas>',
      'quotas of new orgs (env KUMO_DEFAULT_QUOTAS; default databases=10,storageGB=100,backups=50)',
    );
}

function store(command: Command): void {
  command
    .option(
      '--database-url <url>',
      'use this external PostgreSQL instead of the embedded one (env KUMO_DATABASE_URL)',
    )
    .option(
      '--pg-bin <dir>',
      'directory with initdb, pg_ctl and postgres (env KUMO_PG_BIN; default: searched)',
    );
}

function databases(command: Command): void {
  command
    .option(
      '--db-listen-host <host>',
      'address managed databases listen on (env KUMO_DB_LISTEN_HOST; default 127.0.0.1)',
    )
    .option(
      '--db-advertise-host <host>',
      'host name given to clients of managed databases (env KUMO_DB_ADVERTISE_HOST; default: the listen host)',
    )
    .option(
      '--db-ports <from-to>',
      'port range for managed databases (env KUMO_DB_PORTS; default 20000-20999)',
    );
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError('must be a port number (0-65535).');
  return port;
}
