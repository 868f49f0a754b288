import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import mysql from 'mysql2/promise';
import {
  ADMIN,
  account,
  connect,
  connectAdmin,
  files,
  grantTarget,
  passwordHash,
  tool,
  withAdmin,
} from './admin.js';
import { ownDefiners } from './definers.js';
import { beginSnapshot, dumpSnapshotTaken, listTables, tableFacts } from './facts.js';
import { optionName, optionValue, settings, sqlValue } from './settings.js';
import { createTemplate } from './template.js';
import { stderrOf } from '../../system/service-user.js';
import { type BackupStream, type DataFacts, DriverError, type InstanceSpec } from '../../drivers/driver.js';
import {
  aclProxyConfig,
  aclProxyPid,
  reloadAclProxy,
  startAclProxy,
  stopAclProxy,
  stopProcess,
} from '../../drivers/local/acl-proxy.js';
import { Memo, toolVersion } from '../../drivers/local/memo.js';
import { MariadbUsers } from './users.js';
import { isAlive, readPidFile, tailFile } from '../../drivers/local/instance-files.js';
import {
  type EngineContext,
  type LocalEngine,
  type RenderedConfig,
  fingerprint,
} from '../../drivers/local/local-engine.js';

/**
 * MariaDB as local processes. Each instance's data directory is a copy of a per-version template
 * (mariadb-install-db runs once per version). mariadbd listens only on a Unix socket in the
 * instance's private run/ directory (skip-networking); clients reach it through Kumo's ACL proxy
 * (acl-proxy.mjs), which accepts only source addresses in the ACL. The database's credentials are
 * an account with every right on its own database and no other; Kumo administers as kumo_admin.
 */
export class MariadbLocal implements LocalEngine {
  readonly users = new MariadbUsers();
  private readonly templates = new Memo<{ data: string; password: string }>();

  async provision(ctx: EngineContext): Promise<void> {
    const template = await this.template(ctx);
    // The password the copy will have is recorded before the copy exists.
    ctx.state.adminPassword = template.password;
    delete ctx.state.adminPasswordNext;
    await ctx.saveState();
    ctx.crash.reach('mariadb.provision.password-saved');
    await rm(ctx.paths.data, { recursive: true, force: true });
    // Sparse: the template's redo log (96 MB) is zeros until InnoDB writes it; copying it as holes
    // makes a new database a fraction of a second faster and 100 MB smaller on disk until then.
    const copy = ['-a', '--sparse=always', template.data, ctx.paths.data];
    await ctx.as.run('cp', copy, { cwd: ctx.paths.root }).catch((err) => {
      throw new DriverError('ProvisionFailed', `Copying the MariaDB template failed: ${stderrOf(err)}`);
    });
    ctx.crash.reach('mariadb.provision.copied');
  }

  renderConfig(ctx: EngineContext, spec: InstanceSpec): RenderedConfig {
    const f = files(ctx);
    const restart = [
      `datadir = ${ctx.paths.data}`,
      `socket = ${f.socket}`,
      `pid-file = ${f.pid}`,
      'skip-networking',
      'skip-name-resolve',
      'skip-symbolic-links',
      'default-storage-engine = InnoDB',
      `slow-query-log-file = ${ctx.paths.logFile}`,
      `general-log-file = ${ctx.paths.log}/general.log`,
    ];
    const reload: string[] = [];
    for (const [name, value, apply] of settings(spec))
      (apply === 'reload' ? reload : restart).push(`${optionName(name)} = ${optionValue(name, value)}`);
    const proxy = aclProxyConfig(ctx, f.socket, spec.acl);
    return {
      files: [
        {
          path: f.config,
          content: [
            '# Written by Kumo; changes here are overwritten.',
            '[mariadbd]',
            ...restart,
            ...reload,
            '',
          ].join('\n'),
        },
        proxy,
      ],
      fingerprints: {
        restart: fingerprint(restart.join('\n')),
        reload: fingerprint(reload.join('\n')),
        acl: fingerprint(proxy.content),
      },
    };
  }

  async start(ctx: EngineContext): Promise<void> {
    const f = files(ctx);
    if (!isAlive(await readPidFile(f.pid))) {
      const pid = await ctx.as.spawnDetached(ctx.location, [`--defaults-file=${f.config}`], {
        cwd: ctx.paths.data,
        logFile: ctx.paths.logFile,
      });
      // At once, not when mariadbd writes it after recovery: a crash of Kumo meanwhile must not
      // start a second server on the same files.
      await ctx.as.ownedFile(f.pid, `${pid}\n`);
      await waitUntil(ctx, 'mariadbd to accept connections', 120_000, async () => {
        if (!isAlive(pid)) throw new DriverError('StartFailed', `mariadbd exited. ${await logTail(ctx)}`);
        const connection = await connectAdmin(ctx, 3000);
        connection.destroy();
        return true;
      });
      ctx.crash.reach('mariadb.start.server-started');
    }
    await startAclProxy(ctx);
  }

  async stop(ctx: EngineContext): Promise<void> {
    if (isAlive(await aclProxyPid(ctx))) {
      await stopAclProxy(ctx);
      ctx.crash.reach('mariadb.stop.proxy-stopped');
    }
    // SIGTERM is mariadbd's clean shutdown (InnoDB flushed); it may take a while with a large buffer pool.
    await stopProcess(await readPidFile(files(ctx).pid), 120_000);
  }

  async reload(ctx: EngineContext, spec: InstanceSpec): Promise<void> {
    await withAdmin(ctx, async (c) => {
      for (const [name, value, apply] of settings(spec))
        if (apply === 'reload') await c.query(`SET GLOBAL ${name} = ?`, [sqlValue(name, value)]);
    }).catch((err) => {
      throw new DriverError('ReloadFailed', `SET GLOBAL failed: ${(err as Error).message}`);
    });
    await reloadAclProxy(ctx);
  }

  /** The server's pid, as long as both mariadbd and its ACL proxy are alive (either missing is an outage). */
  async pid(ctx: EngineContext): Promise<number | undefined> {
    const server = await readPidFile(files(ctx).pid);
    return isAlive(server) && isAlive(await aclProxyPid(ctx)) ? server : undefined;
  }

  async anyAlive(ctx: EngineContext): Promise<boolean> {
    return isAlive(await readPidFile(files(ctx).pid)) || isAlive(await aclProxyPid(ctx));
  }

  async applyCredentials(ctx: EngineContext, spec: InstanceSpec): Promise<void> {
    // Passwords are sent as mysql_native_password hashes, in sessions the general log skips.
    await withAdmin(ctx, async (c) => {
      if (ctx.state.adminPassword === (await this.template(ctx)).password) {
        // Recorded before the server is told: after a crash in between, connectAdmin finds which works.
        const fresh = ctx.state.adminPasswordNext ?? randomBytes(24).toString('base64url');
        ctx.state.adminPasswordNext = fresh;
        await ctx.saveState();
        ctx.crash.reach('mariadb.credentials.admin-password-recorded');
        await c.query(`ALTER USER ?@'localhost' IDENTIFIED BY PASSWORD ?`, [ADMIN, passwordHash(fresh)]);
        ctx.crash.reach('mariadb.credentials.admin-password-set');
        ctx.state.adminPassword = fresh;
        delete ctx.state.adminPasswordNext;
        await ctx.saveState();
      }
      const user = account(spec.credentials.username);
      const hash = passwordHash(spec.credentials.password);
      await c.query(`CREATE USER IF NOT EXISTS ${user} IDENTIFIED BY PASSWORD ?`, [hash]);
      await c.query(`ALTER USER ${user} IDENTIFIED BY PASSWORD ?`, [hash]);
      ctx.crash.reach('mariadb.credentials.user-set');
      await this.ensureDatabase(c, spec);
    });
  }

  async probe(ctx: EngineContext, spec: InstanceSpec): Promise<string | undefined> {
    try {
      const c = await connect(ctx, spec.credentials.username, spec.credentials.password, {
        database: spec.name,
        timeoutMs: 3000,
      });
      try {
        await c.query('SELECT 1');
        return undefined;
      } finally {
        c.destroy();
      }
    } catch (err) {
      return `a connection with the database's credentials failed: ${(err as Error).message}`;
    }
  }

  /**
   * mariadb-dump in its own transaction, and the facts in another one that sees the same data: both
   * start while commits are blocked (BACKUP STAGE BLOCK_COMMIT), which is held only until the dump's
   * transaction has begun. DDL during the dump may fail it (as with any mariadb-dump).
   */
  async backup(ctx: EngineContext, spec: InstanceSpec, output?: number): Promise<BackupStream> {
    const version = await toolVersion(ctx, tool(ctx.location, 'mariadb-dump'));
    const blocker = await connectAdmin(ctx);
    const snapshot = await connectAdmin(ctx).catch((err: unknown) => {
      blocker.destroy();
      throw err;
    });
    let dump: ReturnType<EngineContext['as']['piped']> | undefined;
    try {
      await blocker.query('BACKUP STAGE START');
      await blocker.query('BACKUP STAGE BLOCK_COMMIT');
      await beginSnapshot(snapshot);
      const tables = await listTables(snapshot, spec.name); // while DDL is blocked, too
      dump = ctx.as.piped(
        tool(ctx.location, 'mariadb-dump'),
        [
          `--socket=${files(ctx).socket}`,
          `--user=${ADMIN}`,
          '--single-transaction',
          '--routines',
          '--events',
          '--triggers',
          '--hex-blob',
          '--default-character-set=utf8mb4',
          '--max-allowed-packet=1G',
          spec.name,
        ],
        {
          cwd: ctx.paths.root,
          env: { MYSQL_PWD: ctx.state.adminPassword },
          stdin: 'ignore',
          stdout: output,
        },
      );
      // Taken at once: a small dump can end before its body is read, and an unread pipe of a process
      // that exited loses its data.
      const body = dump.child.stdout?.pipe(new PassThrough());
      // 'exit', not `exited`: that waits for stdout to be read to its end, and nobody reads it yet.
      const exit = new Promise<number | null>((resolve) => dump!.child.once('exit', resolve));
      await dumpSnapshotTaken(blocker, [snapshot.threadId, blocker.threadId], exit).catch(async (err) => {
        body?.destroy();
        dump!.child.kill('SIGKILL');
        const said = await dump!.exited.then(
          () => '',
          (failed: unknown) => `: ${stderrOf(failed)}`,
        );
        throw new DriverError('BackupFailed', `${(err as Error).message}${said}`);
      });
      await blocker.query('BACKUP STAGE END');
      blocker.destroy();
      const started = dump;
      const done = Promise.all([tableFacts(snapshot, spec.name, tables), started.exited])
        .then(([facts]) => facts)
        .catch((err: unknown) => {
          started.child.kill('SIGKILL');
          throw new DriverError('BackupFailed', `mariadb-dump failed: ${stderrOf(err)}`, false, {
            cause: err,
          });
        })
        .finally(() => snapshot.destroy());
      done.catch(() => undefined); // observed by the caller through facts
      return {
        ...(body ? { body } : {}),
        facts: done,
        tool: version,
        format: 'application/sql',
      };
    } catch (err) {
      dump?.child.kill('SIGKILL');
      blocker.destroy();
      snapshot.destroy();
      throw err instanceof DriverError
        ? err
        : new DriverError('BackupFailed', `Starting the dump failed: ${stderrOf(err)}`);
    }
  }

  /**
   * Loads a dump as the database's own account, so it can change nothing but this database; the
   * DEFINER of views, triggers and routines becomes that account (a dump of another database names
   * another one).
   */
  async restore(ctx: EngineContext, spec: InstanceSpec, body: AsyncIterable<Uint8Array>, replace: boolean) {
    await withAdmin(ctx, async (c) => {
      if (replace) {
        await c.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(spec.name)}`);
        ctx.crash.reach('mariadb.restore.dropped');
      }
      await this.ensureDatabase(c, spec);
    }).catch((err) => {
      throw new DriverError('RestoreFailed', `Preparing the database failed: ${(err as Error).message}`);
    });
    const load = ctx.as.piped(
      tool(ctx.location, 'mariadb'),
      [
        `--socket=${files(ctx).socket}`,
        `--user=${spec.credentials.username}`,
        `--database=${spec.name}`,
        '--batch',
        '--max-allowed-packet=1G',
        '--init-command=SET SESSION max_statement_time = 0',
      ],
      { cwd: ctx.paths.root, env: { MYSQL_PWD: spec.credentials.password }, stdin: 'pipe' },
    );
    const feeding = pipeline(Readable.from(ownDefiners(body)), load.child.stdin!);
    const results = await Promise.allSettled([feeding, load.exited]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      throw new DriverError(
        'RestoreFailed',
        `mariadb failed: ${stderrOf(results[1].status === 'rejected' ? results[1].reason : failed.reason)}`,
      );
    }
  }

  async dataFacts(ctx: EngineContext, spec: InstanceSpec): Promise<DataFacts> {
    return withAdmin(ctx, async (c) => {
      await beginSnapshot(c);
      return tableFacts(c, spec.name, await listTables(c, spec.name));
    });
  }

  /** The database and its account's rights on it, and no other. Idempotent. */
  private async ensureDatabase(c: mysql.Connection, spec: InstanceSpec): Promise<void> {
    await c.query(`CREATE DATABASE IF NOT EXISTS ${mysql.escapeId(spec.name)}`);
    await c.query(
      `GRANT ALL PRIVILEGES ON ${grantTarget(spec.name)} TO ${account(spec.credentials.username)}`,
    );
  }

  /** The template of this version, created once. */
  private template(ctx: EngineContext): Promise<{ data: string; password: string }> {
    return this.templates.get(ctx.state.version, () => createTemplate(ctx));
  }
}

async function waitUntil(
  ctx: EngineContext,
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof DriverError) throw err;
    }
    if (Date.now() > deadline)
      throw new DriverError('StartFailed', `timed out waiting for ${what}. ${await logTail(ctx)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function logTail(ctx: EngineContext): Promise<string> {
  const lines = await tailFile(ctx.paths.logFile, 5);
  return lines.length ? `Last log lines:\n${lines.join('\n')}` : '';
}
