import { Command, InvalidArgumentError } from 'commander';
import { registerAdminCommands } from './commands/admin.js';
import { registerDbCommands } from './commands/db.js';
import { registerDeclarativeCommands } from './commands/declarative.js';
import { registerIamCommands } from './commands/iam.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerMetaCommands } from './commands/meta.js';
import { registerResourceCommands } from './commands/resources.js';
import { registerSessionCommands } from './commands/session.js';
import type { Runtime } from './core/runtime.js';

/** The whole `kumo` command tree. Pure construction: nothing runs until it is parsed. */
export function buildProgram(runtime: Runtime): Command {
  const program = new Command('kumo')
    .description(
      'Kumo: a self-hosted cloud platform for managed databases. This command talks to its HTTP API.',
    )
    .option('--context <name>', 'use this saved context instead of the current one')
    .option('-p, --project <project>', "the project (default: the context's, or KUMO_PROJECT)")
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .option('--wait', 'wait until the change is done (Ready for its latest generation)')
    .option('--timeout <duration>', 'how long --wait waits, e.g. 90s, 5m', '5m')
    .showHelpAfterError()
    .exitOverride() // subcommands inherit it: bin.ts maps commander's refusals to exit 2
    .configureOutput({ writeOut: (s) => runtime.stdout.write(s), writeErr: (s) => runtime.stderr.write(s) });

  program
    .command('up')
    .description(
      'Run Kumo on this machine: an embedded store, the API, the bus, the controllers and the local agent, in one process.',
    )
    .option(
      '--data-dir <dir>',
      'where Kumo keeps its state (env KUMO_DATA_DIR; default ~/.local/share/kumo, /var/lib/kumo as root)',
    )
    .option('--host <host>', 'HTTP listen address (env KUMO_HOST; default 127.0.0.1)')
    .option('--port <port>', 'HTTP port, 0 for any free port (env KUMO_PORT; default 7070)', parsePort)
    .option(
      '--database-url <url>',
      'use this external PostgreSQL instead of the embedded one (env KUMO_DATABASE_URL)',
    )
    .option(
      '--pg-bin <dir>',
      'directory with initdb, pg_ctl and postgres (env KUMO_PG_BIN; default: searched)',
    )
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
    )
    .option(
      '--rate-limit <n>',
      'API requests per second per token, bursts of twice that (env KUMO_RATE_LIMIT; default 100)',
      (v: string) => Number(v),
    )
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace (env KUMO_LOG_LEVEL; default info)')
    .option(
      '--default-quotas <quotas>',
      'quotas of new orgs (env KUMO_DEFAULT_QUOTAS; default databases=10,storageGB=100,backups=50)',
    )
    .addHelpText(
      'after',
      "\nExamples:\n  kumo up\n  kumo up --data-dir /tmp/kumo2 --port 7071\n  KUMO_DATABASE_URL=postgres://kumo@db/kumo kumo up\n\nBackups go to <data-dir>/backups, or to S3 with KUMO_BACKUP_S3_ENDPOINT, _BUCKET, _ACCESS_KEY_ID,\n_SECRET_ACCESS_KEY (and _REGION, _PREFIX, _PATH_STYLE, _PART_SIZE_MB); see docs/backups.md.\nRetention: KUMO_BACKUP_RETENTION_DAYS (backups of deleted databases, 7), KUMO_AUDIT_SYSTEM_RETENTION_DAYS\n(Kumo's own audit entries, 7).",
    )
    .action(async (options: Record<string, string | number | undefined>) => {
      // The server is an optional dependency of the CLI: loaded only for `kumo up`.
      const { runUp } = await import('@kumo/server');
      process.exitCode = await runUp(options, runtime.env);
    });

  registerSessionCommands(program, runtime);
  registerResourceCommands(program, runtime);
  registerDbCommands(program, runtime);
  registerBackupCommands(program, runtime);
  registerDeclarativeCommands(program, runtime);
  registerAdminCommands(program, runtime);
  registerIamCommands(program, runtime);
  registerMetaCommands(program, runtime);
  return program;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError('must be a port number (0-65535).');
  return port;
}
