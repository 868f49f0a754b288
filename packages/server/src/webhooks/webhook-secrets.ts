import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { SecretBox } from '../secrets/secret-box.js';
import type { Queryable } from '../store/sql.js';

const NAME = 'webhook-signing';

/** A webhook's signing secret as Kumo keeps it. `version` increases on every rotation. */
export interface WebhookSecret {
  secret: string;
  version: number;
  rotatedAt: string;
}

/**
 * Signing secrets of webhooks, encrypted at rest with the master key in the `secrets` table, so
 * they go with their webhook. Kumo makes them; they are shown once, by `rotate`.
 */
export class WebhookSecrets {
  constructor(
    private readonly pool: pg.Pool,
    private readonly box: SecretBox,
  ) {}

  /** Makes a new secret for the webhook (the first, or replacing the old one at once) and returns it. */
  async rotate(uid: string, db: Queryable = this.pool): Promise<WebhookSecret> {
    const secret = `whsec_${randomBytes(32).toString('base64url')}`;
    const { rows } = await db.query<{ version: number; created_at: Date }>(
      `INSERT INTO secrets (uid, name, version, ciphertext) VALUES ($1, $2, 1, $3)
       ON CONFLICT (uid, name) DO UPDATE
         SET version = secrets.version + 1, ciphertext = EXCLUDED.ciphertext, created_at = now()
       RETURNING version, created_at`,
      [uid, NAME, this.box.seal(secret)],
    );
    return { secret, version: rows[0]!.version, rotatedAt: rows[0]!.created_at.toISOString() };
  }

  /** The current secret, or undefined while the webhook has none. */
  async read(uid: string, db: Queryable = this.pool): Promise<WebhookSecret | undefined> {
    const { rows } = await db.query<{ version: number; ciphertext: Buffer; created_at: Date }>(
      'SELECT version, ciphertext, created_at FROM secrets WHERE uid = $1 AND name = $2',
      [uid, NAME],
    );
    const row = rows[0];
    return (
      row && {
        secret: this.box.open(row.ciphertext),
        version: row.version,
        rotatedAt: row.created_at.toISOString(),
      }
    );
  }
}

/** The start of a secret, enough to tell two apart, never enough to use. */
export function secretHint(secret: string): string {
  return `${secret.slice(0, 10)}…`;
}
