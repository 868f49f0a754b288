import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { LocalDriver } from '../drivers/local/local-driver.js';
import { EngineCatalog } from '../engines/engine-catalog.js';
import { createLogger } from '../logger.js';
import { ensureServiceUser } from '../system/service-user.js';
import { hostSearchPath } from './test-env.js';

/**
 * A local driver over a temporary directory (removed after the test file) and a random block of
 * ten ports in [from, from + 800), for tests that drive instances without a Kumo.
 */
export async function testLocalDriverSetup(from: number) {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-driver-'));
  await chmod(dir, 0o711);
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const catalog = EngineCatalog.discover({ path: hostSearchPath() });
  const base = from + 10 * Math.floor(Math.random() * 80);
  const newDriver = (options: { searchPath?: string } = {}) =>
    new LocalDriver({
      root: join(dir, 'databases'),
      templatesRoot: join(dir, 'templates'),
      catalog,
      user: ensureServiceUser('kumo'),
      listenHost: '127.0.0.1',
      advertiseHost: '127.0.0.1',
      portRange: [base, base + 9],
      searchPath: options.searchPath ?? hostSearchPath(),
      logger: createLogger('silent'),
    });
  return { dir, catalog, newDriver };
}
