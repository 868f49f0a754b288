import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Queryable } from '../store/sql.js';
import type { SecretBox } from './secret-box.js';

/** A database's login. `version` increases on every rotation. */
export interface Credentials {
  username: string;
  password: string;
  version: number;
}

const NAME = 'owner';

/**
 * Owner credentials of managed databases, encrypted at rest. The control plane generates them;
 * agents read them and apply them. Passwords are 32 URL-safe random characters.
 */
export class CredentialStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly box: SecretBox,
  ) {}

  /** The current credentials of the resource, created on first use. Idempotent and race-free. */
  async ensure(uid: string, username: string, db: Queryable = this.pool): Promise<Credentials> {
    await db.query(
      'INSERT INTO secrets (uid, name, version, ciphertext) VALUES ($1, $2, 1, $3) ON CONFLICT (uid, name) DO NOTHING',
      [uid, NAME, this.box.seal(JSON.stringify({ username, password: generatePassword() }))],
    );
    return this.read(uid, db);
  }

  /**
   * Replaces the password (same username) and returns the new credentials. Pass the client of a
   * transaction to commit the rotation with what records it (its audit row, the agent's nudge).
   */
  async rotate(uid: string, username: string, db: Queryable = this.pool): Promise<Credentials> {
    await this.ensure(uid, username, db);
    await db.query('UPDATE secrets SET version = version + 1, ciphertext = $3 WHERE uid = $1 AND name = $2', [
      uid,
      NAME,
      this.box.seal(JSON.stringify({ username, password: generatePassword() })),
    ]);
    return this.read(uid, db);
  }

  private async read(uid: string, db: Queryable = this.pool): Promise<Credentials> {
    const { rows } = await db.query<{ version: number; ciphertext: Buffer }>(
      'SELECT version, ciphertext FROM secrets WHERE uid = $1 AND name = $2',
      [uid, NAME],
    );
    const row = rows[0]!;
    const { username, password } = JSON.parse(this.box.open(row.ciphertext)) as {
      username: string;
      password: string;
    };
    return { username, password, version: row.version };
  }
}

function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}
