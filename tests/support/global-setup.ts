import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startTestPostgres } from '../../packages/server/src/testing/test-postgres.js';

/**
 * Builds the `kumo` command from the sources under test (tests run it as users do, from its bundle),
 * then starts the test run's own PostgreSQL once; each test file creates its own database on it.
 */
export default async function setup(project: TestProject) {
  execFileSync(process.execPath, [join(import.meta.dirname, '../../packages/cli/build.mjs')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const pg = await startTestPostgres(process.env.PATH ?? '');
  project.provide('pg', pg.connection);
  return () => pg.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    pg: { host: string; user: string; password: string; database: string };
  }
}
