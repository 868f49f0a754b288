import type { DatabaseLogin, InstanceSpec } from '../../drivers/driver.js';
import type { EngineContext, LocalUsers } from '../../drivers/local/local-engine.js';
import { account, connect, grantTarget, passwordHash, withAdmin } from './admin.js';

/** What each access may do on the database. */
const PRIVILEGES: Record<DatabaseLogin['access'], string> = {
  'read-write': 'ALL PRIVILEGES',
  'read-only': 'SELECT, SHOW VIEW',
};

/**
 * DatabaseUsers as MariaDB accounts `name`@'%' (every client arrives through the ACL proxy), with
 * rights on the database alone, like its owner's. Passwords are sent as hashes, in sessions the
 * general log skips.
 */
export class MariadbUsers implements LocalUsers {
  async apply(ctx: EngineContext, spec: InstanceSpec, login: DatabaseLogin): Promise<void> {
    await withAdmin(ctx, async (c) => {
      const user = account(login.username);
      const hash = passwordHash(login.password);
      await c.query(`CREATE USER IF NOT EXISTS ${user} IDENTIFIED BY PASSWORD ?`, [hash]);
      await c.query(`ALTER USER ${user} IDENTIFIED BY PASSWORD ?`, [hash]);
      await c.query(`GRANT ${PRIVILEGES[login.access]} ON ${grantTarget(spec.name)} TO ${user}`);
    });
  }

  async probe(ctx: EngineContext, spec: InstanceSpec, login: DatabaseLogin): Promise<string | undefined> {
    try {
      const c = await connect(ctx, login.username, login.password, { database: spec.name, timeoutMs: 3000 });
      try {
        await c.query('SELECT 1');
        return undefined;
      } finally {
        c.destroy();
      }
    } catch (err) {
      return `a connection as ${login.username} failed: ${(err as Error).message}`;
    }
  }

  async drop(ctx: EngineContext, _spec: InstanceSpec, username: string): Promise<void> {
    await withAdmin(ctx, async (c) => {
      await c.query(`DROP USER IF EXISTS ${account(username)}`);
      // DROP USER leaves open sessions running: end them, so the login is gone at once.
      const [rows] = await c.query('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?', [
        username,
      ]);
      for (const { id } of rows as Array<{ id: number }>)
        await c.query('KILL CONNECTION ?', [id]).catch(() => undefined); // it may have ended meanwhile
    });
  }
}
