import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import { REDIS_PARAMETERS } from './catalog.js';
import { RedisUsers, loginLines } from './users.js';
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
import { isAlive, readPidFile, tailFile } from '../../drivers/local/instance-files.js';
import { toolVersion } from '../../drivers/local/memo.js';
import {
  type EngineContext,
  type LocalEngine,
  type RenderedConfig,
  fingerprint,
} from '../../drivers/local/local-engine.js';

const ADMIN = 'kumo_admin';

/**
 * Redis as local processes. redis-server listens only on a Unix socket in the instance's private
 * directory; clients reach it through Kumo's ACL proxy (acl-proxy.mjs), which accepts only source
 * addresses in the ACL. Users are Redis ACL users with SHA-256 password hashes in the config file.
 */
/**
 * What Kumo sets where the customer sets nothing: persistence on (append-only file, fsync every
 * second), so an acknowledged write survives a crash of the server but for at most its last second.
 */
export const REDIS_DEFAULTS: Readonly<Record<string, string | number | boolean>> = {
  appendonly: true,
  appendfsync: 'everysec',
};

function withDefaults(parameters: Record<string, string | number | boolean>) {
  return { ...REDIS_DEFAULTS, ...parameters };
}

export class RedisLocal implements LocalEngine {
  readonly users = new RedisUsers(
    (ctx, fn) => this.admin(ctx, fn),
    (ctx, username, password) => this.client(ctx, username, password),
  );
  async provision(ctx: EngineContext): Promise<void> {
    await ctx.as.ownedDir(ctx.paths.data);
    ctx.state.adminPassword = randomBytes(24).toString('base64url');
  }

  renderConfig(ctx: EngineContext, spec: InstanceSpec): RenderedConfig {
    const p = ctx.paths;
    const restart = [
      'daemonize yes',
      'port 0',
      `unixsocket ${join(p.run, 'redis.sock')}`,
      'unixsocketperm 700',
      `pidfile ${join(p.run, 'redis.pid')}`,
      `logfile ${p.logFile}`,
      `dir ${p.data}`,
      `databases ${spec.parameters.databases ?? 16}`,
    ];
    const reload = [
      `maxmemory ${spec.plan.memoryMB}mb`,
      `maxclients ${spec.parameters.maxclients ?? spec.plan.maxConnections}`,
      // A backup (redis-cli --rdb) is a diskless replica sync: start it at once, not after 5 s.
      'repl-diskless-sync-delay 0',
    ];
    for (const parameter of REDIS_PARAMETERS) {
      const value = withDefaults(spec.parameters)[parameter.name];
      if (value === undefined || ['databases', 'maxclients'].includes(parameter.name)) continue;
      (parameter.apply === 'reload' ? reload : restart).push(`${parameter.name} ${formatValue(value)}`);
    }
    const users = [
      'user default off',
      `user ${ADMIN} on #${sha256(ctx.state.adminPassword)} ~* &* +@all`,
      `user ${spec.credentials.username} on #${sha256(spec.credentials.password)} ~* &* +@all -@admin`,
      ...loginLines(ctx),
    ];
    const acl = aclProxyConfig(ctx, join(p.run, 'redis.sock'), spec.acl);
    return {
      files: [
        {
          path: join(p.data, 'redis.conf'),
          content: [
            '# Written by Kumo; changes here are overwritten.',
            ...restart,
            ...reload,
            ...users,
            '',
          ].join('\n'),
        },
        acl,
      ],
      fingerprints: {
        restart: fingerprint(restart.join('\n')),
        reload: fingerprint(reload.join('\n')),
        acl: fingerprint(acl.content),
      },
    };
  }

  async start(ctx: EngineContext, spec: InstanceSpec): Promise<void> {
    if (!isAlive(await readPidFile(join(ctx.paths.run, 'redis.pid')))) {
      // With persistence on and no append-only file yet, redis-server starts empty and ignores a
      // snapshot (a restore, or an instance from before persistence was on): it then starts from
      // the snapshot with the file off, and writes the file from memory once it runs.
      const fromSnapshot =
        withDefaults(spec.parameters).appendonly === true &&
        !existsSync(join(ctx.paths.data, 'appendonlydir')) &&
        existsSync(join(ctx.paths.data, 'dump.rdb'));
      try {
        const args = [join(ctx.paths.data, 'redis.conf'), ...(fromSnapshot ? ['--appendonly', 'no'] : [])];
        await ctx.as.run(ctx.location, args, {
          cwd: ctx.paths.data,
          timeoutMs: 30_000,
        });
      } catch (err) {
        throw new DriverError(
          'StartFailed',
          `redis-server did not start: ${stderrOf(err)} ${await logTail(ctx)}`,
        );
      }
      await this.waitUntil(
        ctx,
        async () => (await this.admin(ctx, (r) => r.ping())) === 'PONG',
        'redis-server to answer',
      );
      ctx.crash.reach('redis.start.server-started');
      if (fromSnapshot) await this.appendOnlyFromMemory(ctx);
    }
    await startAclProxy(ctx);
  }

  async stop(ctx: EngineContext): Promise<void> {
    if (isAlive(await aclProxyPid(ctx))) {
      await stopAclProxy(ctx);
      ctx.crash.reach('redis.stop.proxy-stopped');
    }
    await stopProcess(await readPidFile(join(ctx.paths.run, 'redis.pid')), 30_000);
  }

  async reload(ctx: EngineContext, spec: InstanceSpec): Promise<void> {
    const settings: Array<[string, string]> = [
      ['maxmemory', `${spec.plan.memoryMB}mb`],
      ['maxclients', String(spec.parameters.maxclients ?? spec.plan.maxConnections)],
      ['repl-diskless-sync-delay', '0'],
    ];
    for (const parameter of REDIS_PARAMETERS) {
      const value = withDefaults(spec.parameters)[parameter.name];
      if (parameter.apply === 'reload' && value !== undefined && parameter.name !== 'maxclients')
        settings.push([parameter.name, rawValue(value)]);
    }
    await this.admin(ctx, async (r) => {
      for (const [name, value] of settings) await r.config('SET', name, value);
    }).catch((err) => {
      throw new DriverError('ReloadFailed', `CONFIG SET failed: ${(err as Error).message}`);
    });
    await reloadAclProxy(ctx);
  }

  async backup(ctx: EngineContext, _spec: InstanceSpec, output?: number): Promise<BackupStream> {
    // redis-cli --rdb asks the server for a fresh snapshot (as a replica would) and streams it.
    const cli = join(dirname(ctx.location), 'redis-cli');
    const dump = ctx.as.piped(
      cli,
      ['-s', join(ctx.paths.run, 'redis.sock'), '--user', ADMIN, '--no-auth-warning', '--rdb', '-'],
      {
        cwd: ctx.paths.root,
        env: { REDISCLI_AUTH: ctx.state.adminPassword },
        stdin: 'ignore',
        stdout: output,
      },
    );
    const facts = dump.exited.then(
      () => this.dataFacts(ctx),
      (err: unknown) => {
        throw new DriverError('BackupFailed', `redis-cli --rdb failed: ${stderrOf(err)}`, false, {
          cause: err,
        });
      },
    );
    facts.catch(() => undefined);
    // Taken at once: a small snapshot can end before the version below is known, and the unread
    // pipe of a process that exited loses its data.
    const body = dump.child.stdout?.pipe(new PassThrough());
    return {
      ...(body ? { body } : {}),
      facts,
      tool: await toolVersion(ctx, cli),
      format: 'application/x-redis-rdb',
    };
  }

  /** Turns the append-only file on in a running server: it is written from what the server holds. */
  private async appendOnlyFromMemory(ctx: EngineContext): Promise<void> {
    await this.admin(ctx, (r) => r.config('SET', 'appendonly', 'yes'));
    await this.waitUntil(
      ctx,
      async () => {
        const info = await this.admin(ctx, (r) => r.info('persistence'));
        if (/^aof_last_bgrewrite_status:err/m.test(info))
          throw new DriverError(
            'StartFailed',
            'redis-server could not write its append-only file from memory',
          );
        return (
          /^aof_enabled:1/m.test(info) &&
          /^aof_rewrite_in_progress:0/m.test(info) &&
          /^aof_rewrite_scheduled:0/m.test(info)
        );
      },
      'the append-only file to be written',
    );
    ctx.crash.reach('redis.start.append-only-written');
  }

  async restore(ctx: EngineContext, spec: InstanceSpec, body: AsyncIterable<Uint8Array>): Promise<void> {
    // Redis loads its data at start: stop it, put the snapshot in place, start it again.
    await this.stop(ctx);
    ctx.crash.reach('redis.restore.stopped');
    const target = join(ctx.paths.data, 'dump.rdb');
    try {
      await rm(join(ctx.paths.data, 'appendonlydir'), { recursive: true, force: true });
      await pipeline(Readable.from(body), createWriteStream(`${target}.restoring`, { mode: 0o600 }));
      await ctx.as.own(`${target}.restoring`);
      ctx.crash.reach('redis.restore.snapshot-written');
      await rename(`${target}.restoring`, target);
    } catch (err) {
      throw new DriverError('RestoreFailed', `Writing the snapshot failed: ${(err as Error).message}`);
    }
    ctx.crash.reach('redis.restore.snapshot-placed');
    await this.start(ctx, spec);
  }

  /** Keys per logical database, as the server counts them now. */
  async dataFacts(ctx: EngineContext): Promise<DataFacts> {
    const info = await this.admin(ctx, (r) => r.info('keyspace'));
    const tables = [...info.matchAll(/^(db\d+):keys=(\d+)/gm)].map((m) => ({
      name: m[1]!,
      rows: Number(m[2]),
      checksum: '',
    }));
    return { tables };
  }

  /** The server's pid, as long as both redis-server and its ACL proxy are alive (either missing is an outage). */
  async pid(ctx: EngineContext): Promise<number | undefined> {
    const redis = await readPidFile(join(ctx.paths.run, 'redis.pid'));
    return isAlive(redis) && isAlive(await aclProxyPid(ctx)) ? redis : undefined;
  }

  async anyAlive(ctx: EngineContext): Promise<boolean> {
    return isAlive(await readPidFile(join(ctx.paths.run, 'redis.pid'))) || isAlive(await aclProxyPid(ctx));
  }

  async applyCredentials(ctx: EngineContext, spec: InstanceSpec): Promise<void> {
    const { username, password } = spec.credentials;
    await this.admin(ctx, async (r) => {
      await r.call(
        'ACL',
        'SETUSER',
        username,
        'reset',
        'on',
        `#${sha256(password)}`,
        '~*',
        '&*',
        '+@all',
        '-@admin',
      );
      await r.call('ACL', 'DELUSER', 'default').catch(() => undefined);
    });
  }

  async probe(ctx: EngineContext, spec: InstanceSpec): Promise<string | undefined> {
    try {
      const client = this.client(ctx, spec.credentials.username, spec.credentials.password);
      client.on('error', () => undefined);
      try {
        return (await client.ping()) === 'PONG' ? undefined : 'PING did not answer PONG';
      } finally {
        client.disconnect();
      }
    } catch (err) {
      return `a connection with the database's credentials failed: ${(err as Error).message}`;
    }
  }

  private client(ctx: EngineContext, username: string, password: string): Redis {
    return new Redis({
      path: join(ctx.paths.run, 'redis.sock'),
      username,
      password,
      lazyConnect: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 3000,
      enableOfflineQueue: true,
    });
  }

  private async admin<T>(ctx: EngineContext, fn: (r: Redis) => Promise<T>): Promise<T> {
    const client = this.client(ctx, ADMIN, ctx.state.adminPassword);
    client.on('error', () => undefined);
    try {
      return await fn(client);
    } finally {
      client.disconnect();
    }
  }

  private async waitUntil(
    ctx: EngineContext,
    check: () => Promise<boolean>,
    what: string,
    timeoutMs = 30_000,
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
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** As CONFIG SET takes it. */
function rawValue(value: string | number | boolean): string {
  return typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value);
}

/** As redis.conf takes it (strings quoted). */
function formatValue(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'string') return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  return String(value);
}

async function logTail(ctx: EngineContext): Promise<string> {
  const lines = await tailFile(ctx.paths.logFile, 5);
  return lines.length ? `Last log lines:\n${lines.join('\n')}` : '';
}
