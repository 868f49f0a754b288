import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import { migrate } from '../store/migrate.js';
import { createTestDatabase } from './test-postgres.js';

/**
 * A migrated store on a new database of the test server, for the tests of one file: made before
 * them, its pool ended after them. Read `pool` and `url` inside tests (they are set before them).
 */
export function migratedTestStore(): { readonly pool: pg.Pool; readonly url: string } {
  const store = {} as { pool: pg.Pool; url: string };
  beforeAll(async () => {
    store.url = await createTestDatabase(inject('pg'));
    store.pool = new pg.Pool({ connectionString: store.url });
    await migrate(store.pool);
  });
  afterAll(() => store.pool?.end());
  return store;
}
