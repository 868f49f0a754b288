import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  access,
  appendFile,
  chmod,
  chown,
  mkdir,
  readFile,
  readlink,
  realpath,
  rm,
  writeFile,
} from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { SetupError } from '../errors.js';
import type { ServiceUser } from '../system/service-user.js';
import { stderrOf } from '../system/service-user.js';
import type { PostgresBinaries } from './postgres-binaries.js';

const run = promisify(execFile);

export interface EmbeddedPostgresOptions {
  /** Directory that holds pgdata/, run/ (the socket), the superuser password and the server log. */
  dir: string;
  binaries: PostgresBinaries;
  /** The account postgres runs as when Kumo is root; undefined runs it as Kumo's own user. */
  user: ServiceUser | undefined;
  /** Database created on first start for Kumo's tables. Default: "kumo". */
  database?: string;
}

/** How to reach a PostgreSQL server; accepted by pg.Pool and pg.Client. */
export interface PostgresConnection {
  host: string;
  port?: number;
  user: string;
  password: string;
  database: string;
}

const SUPERUSER = 'kumo';
/** PostgreSQL's default port: it names the socket file (.s.PGSQL.5432); nothing listens on TCP. */
const PORT = 5432;

/**
 * A private PostgreSQL server: initdb on first start, then pg_ctl start. It listens only on a Unix
 * socket in a directory no one else can enter, with password authentication. start() adopts a server
 * that is already running on the directory (e.g. after Kumo was killed) and is idempotent; restart()
 * brings back a server that died (StoreSupervisor calls it).
 */
export class EmbeddedPostgres {
  private readonly pgdata: string;
  private readonly runDir: string;
  private readonly passwordFile: string;
  private readonly logDir: string;
  readonly logFile: string;

  constructor(private readonly options: EmbeddedPostgresOptions) {
    this.pgdata = join(options.dir, 'pgdata');
    this.runDir = join(options.dir, 'run');
    this.passwordFile = join(options.dir, 'superuser-password');
    this.logDir = join(options.dir, 'log');
    this.logFile = join(this.logDir, 'postgres.log');
  }

  /** Blocks until the server accepts connections. Throws SetupError with the log's tail on failure. */
  async start(): Promise<PostgresConnection> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o711 });
    await chmod(this.options.dir, 0o711);
    await this.prepareOwnedDir(this.runDir);
    await this.prepareOwnedDir(this.logDir);
    if (!existsSync(join(this.pgdata, 'PG_VERSION'))) await this.initdb();
    const password = (await readFile(this.passwordFile, 'utf8')).trim();
    await this.launch();
    const connection: PostgresConnection = {
      host: this.runDir,
      user: SUPERUSER,
      password,
      database: 'postgres',
    };
    const database = this.options.database ?? 'kumo';
    await ensureDatabase(connection, database);
    return { ...connection, database };
  }

  /**
   * Starts the server again after it stopped on its own (crashed, killed): blocks until it accepts
   * connections; does nothing if it runs. Unlike start(), never creates a store: a data directory
   * that is gone is a SetupError, not a reason to begin anew. Throws SetupError with the log's tail
   * while the old server's processes still hold the data directory (retry later).
   */
  async restart(): Promise<void> {
    if (!existsSync(join(this.pgdata, 'PG_VERSION'))) {
      throw new SetupError(
        `The embedded store's data directory ${this.pgdata} is gone; Kumo will not create an empty store in its place. Restore it, or start Kumo on a new --data-dir.`,
      );
    }
    await this.prepareOwnedDir(this.runDir);
    await this.launch();
  }

  /** Fast shutdown (active transactions roll back, nothing committed is lost). Idempotent. */
  async stop(): Promise<void> {
    if (!(await this.isRunning())) return;
    await this.pgCtl(['stop', '-m', 'fast', '-w', '-t', '60']);
  }

  /** Whether this server's postmaster runs (a live process of this data directory). Never throws. */
  async isRunning(): Promise<boolean> {
    return (await this.postmasterPid()) !== undefined;
  }

  /** The pid of this server's postmaster while it runs; undefined when it does not. Never throws. */
  async postmasterPid(): Promise<number | undefined> {
    const pid = await lockFilePid(join(this.pgdata, 'postmaster.pid'));
    return pid !== undefined && (await this.isServerProcess(pid)) ? pid : undefined;
  }

  /** pg_ctl start unless the server runs, after clearing lock files its killed predecessor left. */
  private async launch(): Promise<void> {
    if (await this.isRunning()) return;
    if (this.runDir.length + 20 > 107) {
      throw new SetupError(
        `The data directory path is too long for a Unix socket (${this.runDir}); choose a shorter --data-dir.`,
      );
    }
    await this.removeStaleLocks();
    try {
      await this.pgCtl(['start', '-w', '-t', '120', '-l', this.logFile]);
    } catch (err) {
      throw new SetupError(
        `The embedded PostgreSQL did not start: ${stderrOf(err)}\n${await this.logTail()}`,
        { cause: err },
      );
    }
  }

  /**
   * A server killed with SIGKILL leaves postmaster.pid and the socket's lock file behind. PostgreSQL
   * ignores them when their pid is gone, but refuses to start while the pid names any live process —
   * a zombie nobody reaped, or an unrelated process that was given the number since. A lock that
   * names no live process of this data directory is stale and removed. Safe while the old server's
   * other processes linger: PostgreSQL still refuses to start while they hold its shared memory.
   */
  private async removeStaleLocks(): Promise<void> {
    for (const file of [join(this.pgdata, 'postmaster.pid'), join(this.runDir, `.s.PGSQL.${PORT}.lock`)]) {
      const pid = await lockFilePid(file);
      if (pid !== undefined && !(await this.isServerProcess(pid))) await rm(file, { force: true });
    }
  }

  /**
   * Whether pid is a live process of this server. On Linux, one whose working directory is pgdata
   * (every PostgreSQL process changes into its data directory); a zombie or a reused pid is not.
   * Elsewhere, any live process.
   */
  private async isServerProcess(pid: number): Promise<boolean> {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
    }
    if (!existsSync('/proc/self/cwd')) return true;
    try {
      return (await readlink(`/proc/${pid}/cwd`)) === (await realpath(this.pgdata));
    } catch {
      return false;
    }
  }

  private async initdb(): Promise<void> {
    await this.prepareOwnedDir(this.pgdata);
    const password = randomBytes(24).toString('base64url');
    await writeFile(this.passwordFile, password + '\n', { mode: 0o600 });
    // initdb reads the password from a file the service user can read; remove it right after.
    const pwfile = join(this.runDir, 'initdb-pwfile');
    await writeFile(pwfile, password + '\n', { mode: 0o600 });
    if (this.options.user) await chown(pwfile, this.options.user.uid, this.options.user.gid);
    try {
      await this.exec('initdb', [
        '-D',
        this.pgdata,
        '-U',
        SUPERUSER,
        '--pwfile',
        pwfile,
        '--auth',
        'scram-sha-256',
        '-E',
        'UTF8',
        '--locale',
        'C',
        '--no-instructions',
      ]);
    } catch (err) {
      throw new SetupError(`initdb failed in ${this.pgdata}: ${stderrOf(err)}`, { cause: err });
    } finally {
      await writeFile(pwfile, '').catch(() => undefined);
    }
    await appendFile(
      join(this.pgdata, 'postgresql.conf'),
      [
        '',
        '# Written by Kumo: a private server reachable only through its Unix socket.',
        "listen_addresses = ''",
        `unix_socket_directories = '${this.runDir}'`,
        'unix_socket_permissions = 0700',
        'max_connections = 200',
        "log_line_prefix = '%m [%p] '",
        '',
      ].join('\n'),
    );
  }

  /** Creates a directory owned by the service user with mode 0700, and checks the user can reach it. */
  private async prepareOwnedDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const user = this.options.user;
    if (!user) return;
    await chown(dir, user.uid, user.gid);
    try {
      await run('test', ['-w', dir], { uid: user.uid, gid: user.gid, cwd: '/' });
    } catch {
      throw new SetupError(
        `${dir} is not reachable by the unprivileged user "${user.name}" that runs PostgreSQL. ` +
          'Make every parent directory traversable (chmod o+x) or choose another --data-dir (as root the default is /var/lib/kumo).',
      );
    }
  }

  private pgCtl(args: string[]): Promise<unknown> {
    return this.exec('pg_ctl', ['-D', this.pgdata, ...args]);
  }

  private exec(binary: string, args: string[]): Promise<unknown> {
    const user = this.options.user;
    return run(join(this.options.binaries.binDir, binary), args, {
      cwd: this.options.dir,
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', LC_ALL: 'C' },
      timeout: 180_000,
    });
  }

  private async logTail(): Promise<string> {
    try {
      await access(this.logFile);
      const lines = (await readFile(this.logFile, 'utf8')).trim().split('\n');
      return `Last lines of ${this.logFile}:\n${lines.slice(-10).join('\n')}`;
    } catch {
      return '';
    }
  }
}

/** The pid on the first line of a PostgreSQL lock file; undefined without one. */
async function lockFilePid(file: string): Promise<number | undefined> {
  const first = (await readFile(file, 'utf8').catch(() => '')).split('\n')[0] ?? '';
  const pid = Number(first.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

async function ensureDatabase(connection: PostgresConnection, database: string): Promise<void> {
  const client = new pg.Client(connection);
  client.on('error', () => undefined); // a failure of the query below is what we report
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${quoteIdent(database)}`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created concurrently
      });
    }
  } finally {
    await client.end();
  }
}

export function quoteIdent(name: string): string {
  return '"' + name.replaceAll('"', '""') + '"';
}
