import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '../testing/test-postgres.js';
import { SetupError } from '../errors.js';
import { migrate } from './migrate.js';

describe('migrate', () => {
  it('applies each migration exactly once when several servers start at the same moment', async () => {
    const url = await createTestDatabase(inject('pg'));
    const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: url }));
    try {
      const results = await Promise.all(pools.map((p) => migrate(p)));
      const applied = results.flat();
      expect(applied.length).toBeGreaterThan(0);
      expect(new Set(applied).size).toBe(applied.length); // nobody applied one twice
      expect(results.filter((r) => r.length > 0)).toHaveLength(1); // one server did the work
      const { rows } = await pools[0]!.query('SELECT name FROM schema_migrations');
      expect(rows.map((r) => r.name)).toEqual(applied);
      expect(await migrate(pools[0]!)).toEqual([]); // idempotent
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('refuses a store that a newer Kumo migrated, naming the migration, and changes nothing', async () => {
    const pool = new pg.Pool({ connectionString: await createTestDatabase(inject('pg')) });
    try {
      const applied = await migrate(pool);
      await pool.query("INSERT INTO schema_migrations (name) VALUES ('999_from_the_future.sql')");
      const refused = await migrate(pool).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(SetupError);
      expect((refused as Error).message).toMatch(
        /^This store was migrated by a newer Kumo \(migration 999_from_the_future\.sql is unknown to Kumo \d+\.\d+\.\d+\); run that version or newer\./,
      );
      const { rows } = await pool.query('SELECT name FROM schema_migrations ORDER BY name');
      expect(rows.map((r) => r.name)).toEqual([...applied, '999_from_the_future.sql']);
    } finally {
      await pool.end();
    }
  });
});
