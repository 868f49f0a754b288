import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { POSTGRES_PARAMETERS } from './catalog.js';
import type { CrashPoints } from '../../faults/crash-points.js';
import { stderrOf } from '../../system/service-user.js';
import { type BackupStream, type DataFacts, DriverError, type InstanceSpec } from '../../drivers/driver.js';
import { Memo, toolVersion } from '../../drivers/local/memo.js';
import { isAlive, tailFile, readPidFile, type AsUser } from '../../drivers/local/instance-files.js';
import {
  type EngineContext,
  type LocalEngine,
  type RenderedConfig,
  fingerprint,
} from '../../drivers/local/local-engine.js';

import { PostgresUsers } from './users.js';

const ADMIN = 'kumo_admin'; // cannot clash with a database name: DNS labels have no "_"

/**
 * PostgreSQL as local processes: each instance is a copy of a per-version template data directory
 * (initdb runs once per version), configured through kumo.conf and pg_hba.conf, run with pg_ctl.
 */
export class PostgresLocal implements LocalEngine {
  private readonly templates = new Memo<{ data: string; password: string }>();
  readonly users = new PostgresUsers((ctx, database) => this.connectAdmin(ctx, database));

  async provision(ctx: EngineContext): Promise<void> {
    const template = await this.template(ctx);
    // The password the copy will have is recorded before the copy exists.
    ctx.state.adminPassword = template.password;
    delete ctx.state.adminPasswordNext;
    await ctx.saveState();
    ctx.crash.reach('postgres.provision.password-saved');
    await rm(ctx.paths.data, { recursive: true, force: true });
    await ctx.as.run('cp', ['-a', template.data, ctx.paths.data], { cwd: ctx.paths.root }).catch((err) => {
      throw new DriverError('ProvisionFailed', `Copying the PostgreSQL template failed: ${stderrOf(err)}`);
    });
    ctx.crash.reach('postgres.provision.copied');
  }

  renderConfig(ctx: EngineContext, spec: InstanceSpec): RenderedConfig {
    const specs = POSTGRES_PARAMETERS;
    const restart: string[] = [
      `listen_addresses = '${ctx.listenHost}'`,
      `port = ${ctx.state.port}`,
      `unix_socket_directories = '${ctx.paths.run}'`,
      'unix_socket_permissions = 0700',
      `max_connections = ${spec.parameters.max_connections ?? spec.plan.maxConnections}`,
      `shared_buffers = ${spec.parameters.shared_buffers ?? Math.max(16, Math.floor(spec.plan.memoryMB / 4))}MB`,
    ];
    const reload: string[] = [
      `effective_cache_size = ${spec.parameters.effective_cache_size ?? Math.floor((spec.plan.memoryMB * 3) / 4)}MB`,
    ];
    for (const [name, value] of Object.entries(spec.parameters).sort(([a], [b]) => a.localeCompare(b))) {
      if (['max_connections', 'shared_buffers', 'effective_cache_size'].includes(name)) continue;
      const parameter = specs.find((p) => p.name === name);
      const line = `${name} = ${formatValue(value, parameter?.unit)}`;
      (parameter?.apply === 'reload' ? reload : restart).push(line);
    }
    const conf = ['# Written by Kumo; changes here are overwritten.', ...restart, ...reload, ''].join('\n');
    const hba = [
      '# Written by Kumo from the ACL; changes here are overwritten.',
      `local all ${ADMIN} scram-sha-256`,
      // Over the socket: its owner and its DatabaseUsers (the agent's probes), on its database only.
      `local ${quoteHba(spec.name)} all scram-sha-256`,
      `host all ${ADMIN} all reject`,
      ...spec.acl.map((cidr) => `host all all ${cidr} scram-sha-256`),
      '',
    ].join('\n');
    return {
      files: [
        { path: join(ctx.paths.data, 'kumo.conf'), content: conf },
        { path: join(ctx.paths.data, 'pg_hba.conf'), content: hba },
      ],
      fingerprints: {
        restart: fingerprint(restart.join('\n')),
        reload: fingerprint(reload.join('\n')),
        acl: fingerprint(hba),
      },
    };
  }

  async start(ctx: EngineContext): Promise<void> {
    try {
      await pgCtl(ctx, ['start', '-w', '-t', '60', '-s', '-l', ctx.paths.logFile]);
    } catch (err) {
      const tail = (await tailFile(ctx.paths.logFile, 8)).join('\n');
      throw new DriverError('StartFailed', `PostgreSQL did not start: ${tail || stderrOf(err)}`, false, {
        cause: err,
      });
    }
  }

  async stop(ctx: EngineContext): Promise<void> {
    if (!existsSync(join(ctx.paths.data, 'postmaster.pid'))) return;
    await pgCtl(ctx, ['stop', '-m', 'fast', '-w', '-t', '60', '-s']).catch((err) => {
      if (existsSync(join(ctx.paths.data, 'postmaster.pid')))
        throw new DriverError('StopFailed', `pg_ctl stop failed: ${stderrOf(err)}`);
    });
  }

  async reload(ctx: EngineContext): Promise<void> {
    await pgCtl(ctx, ['reload', '-s']).catch((err) => {
      throw new DriverError('ReloadFailed', `pg_ctl reload failed: ${stderrOf(err)}`);
    });
  }

  pid(ctx: EngineContext): Promise<number | undefined> {
    return readPidFile(join(ctx.paths.data, 'postmaster.pid'));
  }

  async anyAlive(ctx: EngineContext): Promise<boolean> {
    return isAlive(await this.pid(ctx));
  }

  async applyCredentials(ctx: EngineContext, spec: InstanceSpec): Promise<void> {
    const client = await this.connectAdmin(ctx, 'postgres');
    try {
      // Statements with passwords must never reach the server log, whatever log_statement says.
      await client.query(
        "SET log_statement = 'none'; SET log_min_duration_statement = -1; SET log_min_error_statement = 'panic'",
      );
      if (ctx.state.adminPassword === (await this.template(ctx)).password) {
        // Recorded before the server is told: after a crash in between, connectAdmin finds which works.
        const fresh = ctx.state.adminPasswordNext ?? randomBytes(24).toString('base64url');
        ctx.state.adminPasswordNext = fresh;
        await ctx.saveState();
        ctx.crash.reach('postgres.credentials.admin-password-recorded');
        await client.query(`ALTER ROLE ${ADMIN} PASSWORD ${client.escapeLiteral(fresh)}`);
        ctx.crash.reach('postgres.credentials.admin-password-set');
        ctx.state.adminPassword = fresh;
        delete ctx.state.adminPasswordNext;
        await ctx.saveState();
      }
      const role = client.escapeIdentifier(spec.credentials.username);
      const password = client.escapeLiteral(spec.credentials.password);
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [
        spec.credentials.username,
      ]);
      await client.query(`${exists.rowCount ? 'ALTER' : 'CREATE'} ROLE ${role} LOGIN PASSWORD ${password}`);
      ctx.crash.reach('postgres.credentials.role-set');
      const db = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [spec.name]);
      if (!db.rowCount)
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(spec.name)} OWNER ${role}`);
      else await client.query(`ALTER DATABASE ${client.escapeIdentifier(spec.name)} OWNER TO ${role}`);
    } finally {
      await client.end();
    }
  }

  /**
   * A connected admin client. When the recorded password is refused and a new one was recorded
   * (a crash between recording it and saving that the server took it), the new one is tried and,
   * when it works, kept.
   */
  private async connectAdmin(ctx: EngineContext, database: string): Promise<pg.Client> {
    const connect = async (password: string) => {
      const client = managedClient({
        host: ctx.paths.run,
        port: ctx.state.port,
        user: ADMIN,
        password,
        database,
        connectionTimeoutMillis: 10_000,
      });
      try {
        await client.connect();
        return client;
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
    };
    try {
      return await connect(ctx.state.adminPassword);
    } catch (err) {
      const next = ctx.state.adminPasswordNext;
      if ((err as { code?: string }).code !== '28P01' || !next) throw err;
      const client = await connect(next);
      ctx.state.adminPassword = next;
      delete ctx.state.adminPasswordNext;
      await ctx.saveState();
      return client;
    }
  }

  async probe(ctx: EngineContext, spec: InstanceSpec): Promise<string | undefined> {
    const client = managedClient({
      host: ctx.paths.run,
      port: ctx.state.port,
      user: spec.credentials.username,
      password: spec.credentials.password,
      database: spec.name,
      connectionTimeoutMillis: 3000,
    });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (err) {
      return `a connection with the database's credentials failed: ${(err as Error).message}`;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async backup(ctx: EngineContext, spec: InstanceSpec, output?: number): Promise<BackupStream> {
    // One snapshot for the dump and the facts: the facts describe exactly what the dump holds.
    const client = await this.connectAdmin(ctx, spec.name);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const { rows } = await client.query<{ id: string; pid: number }>(
        'SELECT pg_export_snapshot() AS id, pg_backend_pid() AS pid',
      );
      // The facts are counted by their own backend alongside pg_dump and its backend, which keep
      // the cores busy: counting at the lowest priority uses their idle time instead of slowing the
      // dump (docs/benchmarks.md). The backend exits with this connection.
      yieldCpu(rows[0]!.pid);
      const dump = ctx.as.piped(
        join(ctx.location, 'pg_dump'),
        ['-Fc', `--snapshot=${rows[0]!.id}`, ...adminConnection(ctx, spec.name)],
        {
          cwd: ctx.paths.root,
          env: { PGPASSWORD: ctx.state.adminPassword },
          stdin: 'ignore',
          stdout: output,
        },
      );
      const facts = tableFacts(client);
      const done = Promise.all([facts, dump.exited])
        .then(([measured]) => measured)
        .catch((err: unknown) => {
          dump.child.kill('SIGKILL');
          throw new DriverError('BackupFailed', `pg_dump failed: ${stderrOf(err)}`, false, { cause: err });
        })
        // The snapshot is no longer needed; the backup need not wait for the connection to close.
        .finally(() => void client.end().catch(() => undefined));
      done.catch(() => undefined); // observed by the caller through facts
      // Read at once: a small dump can end before the version below is known, and the unread
      // pipe of a process that exited loses its data.
      const body = dump.child.stdout?.pipe(new PassThrough());
      return {
        ...(body ? { body } : {}),
        facts: done,
        tool: await toolVersion(ctx, join(ctx.location, 'pg_dump')),
        format: 'application/x-pg-dump',
      };
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err instanceof DriverError
        ? err
        : new DriverError('BackupFailed', `Starting the dump failed: ${(err as Error).message}`);
    }
  }

  async restore(ctx: EngineContext, spec: InstanceSpec, body: AsyncIterable<Uint8Array>, replace: boolean) {
    // Into this server's one database only: no --create, so a dump naming another database cannot
    // switch to it; objects are created as the database's owner, never as a superuser.
    const restore = ctx.as.piped(
      join(ctx.location, 'pg_restore'),
      [
        '--no-owner',
        '--no-privileges',
        `--role=${spec.credentials.username}`,
        '--single-transaction',
        '--exit-on-error',
        ...(replace ? ['--clean', '--if-exists'] : []),
        ...adminConnection(ctx, spec.name),
      ],
      { cwd: ctx.paths.root, env: { PGPASSWORD: ctx.state.adminPassword }, stdin: 'pipe' },
    );
    const feeding = pipeline(Readable.from(body), restore.child.stdin!);
    const results = await Promise.allSettled([feeding, restore.exited]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      throw new DriverError(
        'RestoreFailed',
        `pg_restore failed: ${stderrOf(results[1].status === 'rejected' ? results[1].reason : failed.reason)}`,
      );
    }
  }

  async dataFacts(ctx: EngineContext, spec: InstanceSpec): Promise<DataFacts> {
    const client = await this.connectAdmin(ctx, spec.name);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      return await tableFacts(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** The template of this version, created once (initdb into a temporary directory, then renamed). */
  private template(ctx: EngineContext): Promise<{ data: string; password: string }> {
    return this.templates.get(ctx.state.version, () =>
      createTemplate(ctx.templatesRoot, ctx.state.version, ctx.location, ctx.as, ctx.crash),
    );
  }
}

async function createTemplate(
  root: string,
  version: string,
  binDir: string,
  as: AsUser,
  crash: CrashPoints,
): Promise<{ data: string; password: string }> {
  const dir = join(root, `postgres-${version}`);
  const data = join(dir, 'data');
  const passwordFile = join(dir, 'admin-password');
  const pwfile = join(dir, 'initdb-pwfile');
  // What a build that a crash interrupted left (one Kumo per data directory: none is in flight).
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    if (entry.startsWith('data.building-')) await rm(join(dir, entry), { recursive: true, force: true });
  }
  await rm(pwfile, { force: true });
  if (existsSync(join(data, 'PG_VERSION')) && existsSync(passwordFile)) {
    return { data, password: (await readFile(passwordFile, 'utf8')).trim() };
  }
  await as.ownedDir(root, 0o711);
  await as.ownedDir(dir, 0o711);
  const password = randomBytes(24).toString('base64url');
  const building = join(dir, `data.building-${process.pid}`);
  await as.ownedFile(pwfile, password + '\n');
  try {
    await as.run(
      join(binDir, 'initdb'),
      [
        '-D',
        building,
        '-U',
        ADMIN,
        '--pwfile',
        pwfile,
        '--auth-local=scram-sha-256',
        '--auth-host=scram-sha-256',
        '-E',
        'UTF8',
        '--locale',
        'C',
        '--no-instructions',
      ],
      { cwd: dir },
    );
  } catch (err) {
    throw new DriverError('TemplateFailed', `initdb for PostgreSQL ${version} failed: ${stderrOf(err)}`);
  } finally {
    await rm(pwfile, { force: true });
  }
  crash.reach('postgres.template.initialised');
  await appendFile(
    join(building, 'postgresql.conf'),
    "\n# Kumo's settings for this instance\ninclude_if_exists = 'kumo.conf'\n",
  );
  await writeFile(passwordFile, password + '\n', { mode: 0o600 });
  crash.reach('postgres.template.password-saved');
  await rm(data, { recursive: true, force: true });
  await rename(building, data);
  crash.reach('postgres.template.ready');
  return { data, password };
}

/**
 * A client of a managed server. Its server may die at any moment (that is what the agent watches
 * for); an idle client then emits 'error', which must never become an uncaught exception in Kumo.
 */
/** Tables up to this size get a content checksum; larger ones a row count only (see docs/backups.md). */
const CHECKSUM_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Per table, in the client's current transaction: the row count and, for tables up to
 * CHECKSUM_MAX_BYTES, an order-independent checksum (the sum of a 64-bit hash of each row's
 * text). Linear in the data, no sort; the checksum costs about as much as the dump itself, so
 * large tables are counted only (the dump's SHA-256 still proves its bytes).
 */
async function tableFacts(client: pg.Client): Promise<DataFacts> {
  // One process: parallel workers would compete with pg_dump, which runs at the same time.
  await client.query('SET LOCAL max_parallel_workers_per_gather = 0');
  const { rows: tables } = await client.query<{ schema: string; name: string; bytes: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, pg_relation_size(c.oid) AS bytes
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
     ORDER BY 1, 2`,
  );
  const facts: DataFacts['tables'] = [];
  for (const t of tables) {
    const table = `${client.escapeIdentifier(t.schema)}.${client.escapeIdentifier(t.name)}`;
    const checksum =
      Number(t.bytes) <= CHECKSUM_MAX_BYTES
        ? 'coalesce(sum(hashtextextended(r::text, 0)::numeric), 0)::text'
        : "''";
    const { rows } = await client.query<{ rows: string; checksum: string }>(
      `SELECT count(*) AS rows, ${checksum} AS checksum FROM ONLY ${table} r`,
    );
    facts.push({ name: `${t.schema}.${t.name}`, rows: Number(rows[0]!.rows), checksum: rows[0]!.checksum });
  }
  return { tables: facts };
}

/** Command-line connection options of the admin role over the instance's Unix socket (password in PGPASSWORD). */
function adminConnection(ctx: EngineContext, database: string): string[] {
  return ['-h', ctx.paths.run, '-p', String(ctx.state.port), '-U', ADMIN, '-d', database];
}

/** Lowers a process to the lowest CPU priority, where the system lets Kumo (it is a help, not a need). */
function yieldCpu(pid: number): void {
  try {
    setPriority(pid, 19);
  } catch {
    // another user's process without the right to renice it: the work runs at normal priority
  }
}

function managedClient(config: pg.ClientConfig): pg.Client {
  const client = new pg.Client(config);
  client.on('error', () => undefined); // the pending or next query fails, and that is reported
  return client;
}

function pgCtl(ctx: EngineContext, args: string[]) {
  return ctx.as.run(join(ctx.location, 'pg_ctl'), ['-D', ctx.paths.data, ...args], {
    cwd: ctx.paths.root,
    timeoutMs: 90_000,
  });
}

function formatValue(value: string | number | boolean, unit: string | undefined): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') return unit === 'MB' || unit === 'kB' ? `${value}${unit}` : String(value);
  return `'${value.replaceAll("'", "''")}'`;
}

function quoteHba(name: string): string {
  return /^[a-z0-9_]+$/.test(name) ? name : `"${name}"`;
}
