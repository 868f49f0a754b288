import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startTestPostgres } from '../../packages/server/src/testing/test-postgres.js';

/** Starts the test run's own PostgreSQL once; each test file creates its own database on it. */
export default async function setup(project: TestProject) {
  const pg = await startTestPostgres(process.env.PATH ?? '');
  project.provide('pg', pg.connection);
  return () => pg.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    pg: { host: string; user: string; password: string; database: string };
  }
}
