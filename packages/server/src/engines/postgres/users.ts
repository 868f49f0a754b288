import pg from 'pg';
import type { DatabaseLogin, InstanceSpec } from '../../drivers/driver.js';
import type { EngineContext, LocalUsers } from '../../drivers/local/local-engine.js';

/** An admin connection to one database of the instance (PostgresLocal's, with its password recovery). */
type ConnectAdmin = (ctx: EngineContext, database: string) => Promise<pg.Client>;

/** Statements with passwords must never reach the server log, whatever log_statement says. */
const QUIET =
  "SET log_statement = 'none'; SET log_min_duration_statement = -1; SET log_min_error_statement = 'panic'";

/**
 * DatabaseUsers as PostgreSQL login roles. read-write: a member of the database's users group (a
 * NOLOGIN role, "<owner>_users") whose sessions start as that group (`SET role`), so what it
 * creates belongs to the group and outlives the user. The group may use and change everything of
 * the owner's in the public schema (grants and default privileges) and the owner is a member of
 * the group; a user is never a member of the owner, so it cannot act as the owner (nor change the
 * owner's password) and nothing it did survives its deletion. read-only: a member of
 * pg_read_all_data whose transactions are read-only.
 */
export class PostgresUsers implements LocalUsers {
  constructor(private readonly connectAdmin: ConnectAdmin) {}

  async apply(ctx: EngineContext, spec: InstanceSpec, login: DatabaseLogin): Promise<void> {
    const client = await this.connectAdmin(ctx, 'postgres');
    try {
      await client.query(QUIET);
      const role = client.escapeIdentifier(login.username);
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [login.username]);
      await client.query(
        `${exists.rowCount ? 'ALTER' : 'CREATE'} ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${client.escapeLiteral(login.password)}`,
      );
      if (login.access === 'read-write') {
        const group = await this.usersGroup(ctx, spec, client);
        await client.query(`GRANT ${client.escapeIdentifier(group)} TO ${role}`);
        await client.query(
          `ALTER ROLE ${role} IN DATABASE ${client.escapeIdentifier(spec.name)} SET role = ${client.escapeLiteral(group)}`,
        );
      } else {
        await client.query(`GRANT pg_read_all_data TO ${role}`);
        await client.query(`ALTER ROLE ${role} SET default_transaction_read_only = on`);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** The NOLOGIN group read-write users act as, made (again: every step is idempotent) with its grants. */
  private async usersGroup(ctx: EngineContext, spec: InstanceSpec, admin: pg.Client): Promise<string> {
    const name = `${spec.credentials.username}_users`;
    const group = admin.escapeIdentifier(name);
    const owner = admin.escapeIdentifier(spec.credentials.username);
    const made = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
    if (!made.rowCount) await admin.query(`CREATE ROLE ${group} NOLOGIN`);
    await admin.query(`GRANT ${group} TO ${owner}`);
    await admin.query(
      `GRANT CONNECT, TEMPORARY ON DATABASE ${admin.escapeIdentifier(spec.name)} TO ${group}`,
    );
    const inDatabase = await this.connectAdmin(ctx, spec.name);
    try {
      for (const statement of [
        `GRANT USAGE, CREATE ON SCHEMA public TO ${group}`,
        `GRANT ALL ON ALL TABLES IN SCHEMA public TO ${group}`,
        `GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${group}`,
        `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ${group}`,
        `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA public GRANT ALL ON TABLES TO ${group}`,
        `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA public GRANT ALL ON SEQUENCES TO ${group}`,
        `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO ${group}`,
      ])
        await inDatabase.query(statement);
    } finally {
      await inDatabase.end().catch(() => undefined);
    }
    return name;
  }

  async probe(ctx: EngineContext, spec: InstanceSpec, login: DatabaseLogin): Promise<string | undefined> {
    const client = new pg.Client({
      host: ctx.paths.run,
      port: ctx.state.port,
      user: login.username,
      password: login.password,
      database: spec.name,
      connectionTimeoutMillis: 3000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (err) {
      return `a connection as ${login.username} failed: ${(err as Error).message}`;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async drop(ctx: EngineContext, spec: InstanceSpec, username: string): Promise<void> {
    const admin = await this.connectAdmin(ctx, 'postgres');
    try {
      const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username]);
      if (!exists.rowCount) return;
      const role = admin.escapeIdentifier(username);
      // No new session from here on, then none of the open ones.
      await admin.query(`ALTER ROLE ${role} NOLOGIN`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
        username,
      ]);
      // What it made as itself (after RESET ROLE) goes to the owner; its grants go with it.
      const inDatabase = await this.connectAdmin(ctx, spec.name);
      try {
        await inDatabase.query(
          `REASSIGN OWNED BY ${role} TO ${admin.escapeIdentifier(spec.credentials.username)}`,
        );
        await inDatabase.query(`DROP OWNED BY ${role}`);
      } finally {
        await inDatabase.end().catch(() => undefined);
      }
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }
}
