import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DatabaseLogin, InstanceSpec } from '../../drivers/driver.js';
import type { EngineContext, LocalUsers } from '../../drivers/local/local-engine.js';

/** What each access may run: everything but administration, or reads (and the connection's own commands). */
const RULES: Record<DatabaseLogin['access'], string[]> = {
  'read-write': ['~*', '&*', '+@all', '-@admin'],
  'read-only': ['~*', '&*', '+@read', '+@connection', '-@admin'],
};

/** The ACL rule of a login, as redis.conf's `user` line and ACL SETUSER take it (password hashed). */
export function loginRule(login: DatabaseLogin): string[] {
  return ['on', `#${createHash('sha256').update(login.password).digest('hex')}`, ...RULES[login.access]];
}

/** The `user` lines of the instance's DatabaseUsers, for redis.conf (so a restart keeps them). */
export function loginLines(ctx: EngineContext): string[] {
  return Object.entries(ctx.state.logins ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([username, rule]) => `user ${username} ${rule}`);
}

/**
 * DatabaseUsers as Redis ACL users. Each is applied to the running server (ACL SETUSER) and
 * recorded in the instance's state, from which redis.conf is rendered, so a restart keeps it;
 * dropping removes the record first, then the user (ACL DELUSER also closes its connections).
 */
export class RedisUsers implements LocalUsers {
  constructor(
    private readonly admin: <T>(ctx: EngineContext, fn: (r: Redis) => Promise<T>) => Promise<T>,
    private readonly connect: (ctx: EngineContext, username: string, password: string) => Redis,
  ) {}

  async apply(ctx: EngineContext, _spec: InstanceSpec, login: DatabaseLogin): Promise<void> {
    const rule = loginRule(login);
    await this.admin(ctx, (r) => r.call('ACL', 'SETUSER', login.username, 'reset', ...rule));
    if (ctx.state.logins?.[login.username] !== rule.join(' ')) {
      ctx.state.logins = { ...ctx.state.logins, [login.username]: rule.join(' ') };
      await ctx.saveState();
    }
  }

  async probe(ctx: EngineContext, _spec: InstanceSpec, login: DatabaseLogin): Promise<string | undefined> {
    try {
      const client = this.connect(ctx, login.username, login.password);
      client.on('error', () => undefined);
      try {
        return (await client.ping()) === 'PONG' ? undefined : 'PING did not answer PONG';
      } finally {
        client.disconnect();
      }
    } catch (err) {
      return `a connection as ${login.username} failed: ${(err as Error).message}`;
    }
  }

  async drop(ctx: EngineContext, _spec: InstanceSpec, username: string): Promise<void> {
    if (ctx.state.logins?.[username] !== undefined) {
      const { [username]: _gone, ...rest } = ctx.state.logins;
      ctx.state.logins = rest;
      await ctx.saveState();
    }
    await this.admin(ctx, (r) => r.call('ACL', 'DELUSER', username));
  }
}
