import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { SetupError } from '../errors.js';
import { KUMO_VERSION } from '../version.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Arbitrary constant: the advisory lock every Kumo process takes to migrate. */
const MIGRATION_LOCK = 0x6b756d6f; // "kumo"

/**
 * Applies the pending migrations in order, each in its own transaction, under a session advisory
 * lock: several servers starting at once migrate once, the others wait and then find nothing to do.
 * Idempotent. Returns the names applied by this call.
 *
 * A store that holds a migration this Kumo does not know was migrated by a newer Kumo: it is
 * refused (SetupError) before anything is applied, since an older binary would misread its tables.
 */
export async function migrate(pool: pg.Pool): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{3}_.+\.sql$/.test(f)).sort();
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ name: string }>('SELECT name FROM schema_migrations');
    const done = new Set(rows.map((r) => r.name));
    const unknown = [...done].filter((name) => !files.includes(name)).sort();
    if (unknown.length > 0) {
      throw new SetupError(
        `This store was migrated by a newer Kumo (migration ${unknown.join(', ')} is unknown to Kumo ${KUMO_VERSION}); run that version or newer. Kumo never migrates a store back.`,
      );
    }
    for (const file of files) {
      if (done.has(file)) continue;
      const sql = await readFile(MIGRATIONS_DIR + file, 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(file);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
  return applied;
}
