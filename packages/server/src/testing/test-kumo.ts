import { hostSearchPath } from './test-env.js';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../config.js';
import { Kumo } from '../kumo.js';
import { createLogger } from '../logger.js';
import type { PostgresConnection } from '../store/embedded-postgres.js';
import { createTestDatabase } from './test-postgres.js';

export interface TestKumo {
  kumo: Kumo;
  url: string;
  token: string;
  databaseUrl: string;
  /** An in-process request to the API with the admin token (unless headers override it). */
  request: (path: string, init?: RequestInit & { json?: unknown }) => Promise<Response>;
  stop: () => Promise<void>;
}

/** A whole Kumo (API, relay, controllers) on a fresh database of the test server, listening on a free port. */
export interface TestKumoOptions {
  /** Reuse a store (to restart Kumo on it). Default: a new database. */
  databaseUrl?: string;
  /** Reuse a data directory (to restart Kumo on it); it is then kept on stop(). */
  dataDir?: string;
  /** Managed database ports. Default: a random block of 50 in 21000-30999. */
  dbPorts?: string;
  /** API requests per second per token. Default: high enough never to matter in tests. */
  rateLimit?: number;
  /** More environment for the configuration (e.g. KUMO_BACKUP_S3_*). */
  env?: Record<string, string>;
}

export async function startTestKumo(
  server: PostgresConnection,
  options: TestKumoOptions = {},
): Promise<TestKumo & { dataDir: string; dbPorts: string }> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'kumo-test-')));
  const url = options.databaseUrl ?? (await createTestDatabase(server));
  // Test ports stay below the kernel's ephemeral range (32768+), where client sockets would take
  // them: 21000-30999 here, 31000-32599 for the driver tests, 32600-32649 for the secrets-in-logs
  // test's `kumo up`, 32650-32699 for the random crash test's, 32700 for a fixed one, 32710-32767 for
  // the crash-point suites (20 each).
  const base = 21000 + 50 * Math.floor(Math.random() * 200);
  const dbPorts = options.dbPorts ?? `${base}-${base + 49}`;
  const config = resolveConfig(
    {
      dataDir,
      port: 0,
      databaseUrl: url,
      logLevel: 'silent',
      dbPorts,
      rateLimit: options.rateLimit ?? 100_000,
    },
    { PATH: hostSearchPath(), ...options.env },
  );
  const kumo = await Kumo.start(
    {
      ...config,
      http: { ...config.http, streamRecheckMs: 300 },
      // A crash loop is tried again after seconds, not minutes, so a test sees it recover.
      controllers: { workers: 2, resyncIntervalMs: 60_000, crashLoopRetryMs: 3000 },
    },
    createLogger('silent'),
  );
  const token = kumo.adminToken.token!;
  return {
    kumo,
    url: kumo.url,
    token,
    databaseUrl: url,
    dataDir,
    dbPorts,
    request: async (path, init = {}) => {
      const { json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
      if (json !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
      return await kumo.app.request(path, {
        ...rest,
        headers,
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      });
    },
    stop: async () => {
      await kumo.stop();
      if (!options.dataDir) {
        await killManagedServers(dataDir);
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** Managed servers outlive Kumo by design; a test's own must not outlive the test. */
export async function killManagedServers(dataDir: string): Promise<void> {
  const root = join(dataDir, 'databases');
  for (const uid of await readdir(root).catch(() => [] as string[])) {
    for (const pidFile of ['data/postmaster.pid', 'run/redis.pid', 'run/acl-proxy.pid']) {
      const pid = Number((await readFile(join(root, uid, pidFile), 'utf8').catch(() => '')).split('\n')[0]);
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
}
