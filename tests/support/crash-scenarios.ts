import { expect } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { waitFor } from '../../packages/server/src/testing/wait.js';
import type { Api, Scenario } from './crash-harness.js';

/**
 * The scenarios of the crash-point suite: one per reconciler that changes something outside the
 * store. Each asks for one thing and checks, after a crash anywhere in it and a restart, that it
 * happened exactly once, as asked.
 */

const P = '/v1/projects/shop';
/** Converging after a restart may take retries with backoff; generous for a loaded machine. */
const CONVERGE_MS = 90_000;

async function project(api: Api): Promise<void> {
  await ok(api.call('POST', '/v1/orgs', { metadata: { name: 'acme' }, spec: {} }));
  await ok(api.call('POST', '/v1/projects', { metadata: { name: 'shop' }, spec: { org: 'acme' } }));
}

async function ok(res: Promise<{ status: number; body: any }>): Promise<any> {
  const { status, body } = await res;
  if (status >= 300) throw new Error(`${status}: ${JSON.stringify(body)}`);
  return body;
}

const ENGINE = {
  postgres: { engine: 'postgres', version: '15', plan: 'small' },
  redis: { engine: 'redis', version: '7', plan: 'small' },
  mariadb: { engine: 'mariadb', version: '10.11', plan: 'small' },
} as const;

function createDb(api: Api, name: string, spec: Record<string, unknown>) {
  return ok(
    api.call('POST', `${P}/databases`, {
      metadata: { name },
      spec: { acl: [{ cidr: '127.0.0.1/32' }], ...spec },
    }),
  );
}

/** Waits until the database's status describes its current spec in the given phase. */
async function phase(api: Api, name: string, wanted: 'Ready' | 'Stopped'): Promise<any> {
  return waitFor(
    async () => {
      const { body: db } = await api.call('GET', `${P}/databases/${name}`);
      const ready = db?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
      const current = db?.status?.observedGeneration === db?.metadata?.generation;
      if (!current) return undefined;
      if (wanted === 'Ready' && db.status.phase === 'Ready' && ready?.status === 'True') return db;
      if (wanted === 'Stopped' && db.status.phase === 'Stopped') return db;
      return undefined;
    },
    `${name} ${wanted}`,
    CONVERGE_MS,
  ).catch(async (err: Error) => {
    const { body } = await api.call('GET', `${P}/databases/${name}`);
    throw new Error(`${err.message}; status: ${JSON.stringify(body?.status)}`);
  });
}

async function credentials(api: Api, name: string, rotate = false) {
  return ok(
    api.call(rotate ? 'POST' : 'GET', `${P}/databases/${name}/credentials${rotate ? '/rotate' : ''}`),
  );
}

/** Runs SQL with the database's own credentials over TCP, as a customer would. */
async function sql(api: Api, name: string, text: string): Promise<any[]> {
  const { uri } = await credentials(api, name);
  const client = new pg.Client({ connectionString: uri, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

async function redis<T>(api: Api, name: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const { uri } = await credentials(api, name);
  const client = new Redis(uri, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/** Runs SQL on a MariaDB with the database's own credentials over TCP, as a customer would. */
async function mariadb(api: Api, name: string, text: string): Promise<any[]> {
  const c = await credentials(api, name);
  const conn = await mysql.createConnection({
    host: c.host,
    port: c.port,
    user: c.username,
    password: c.password,
    database: c.database,
    connectTimeout: 5000,
  });
  try {
    return (await conn.query(text))[0] as any[];
  } finally {
    await conn.end();
  }
}

async function readyMariadb(api: Api): Promise<void> {
  await project(api);
  await createDb(api, 'shopdb', ENGINE.mariadb);
  await phase(api, 'shopdb', 'Ready');
}

async function uidOf(api: Api, name: string): Promise<string> {
  return (await ok(api.call('GET', `${P}/databases/${name}`))).metadata.uid;
}

export async function backupDone(api: Api, name: string): Promise<any> {
  return waitFor(
    async () => {
      const { body } = await api.call('GET', `${P}/backups/${name}`);
      return ['Succeeded', 'Failed'].includes(body?.status?.phase) ? body : undefined;
    },
    `backup ${name} done`,
    CONVERGE_MS,
  );
}

/** The setup of the scenarios that change a running PostgreSQL. */
async function readyOrders(api: Api): Promise<void> {
  await project(api);
  await createDb(api, 'orders', ENGINE.postgres);
  await phase(api, 'orders', 'Ready');
}

/** Waits until the database's in-place restore has ended; fails unless it Succeeded. */
async function restored(api: Api, name: string): Promise<any> {
  const db = await waitFor(
    async () => {
      const { body } = await api.call('GET', `${P}/databases/${name}`);
      return ['Succeeded', 'Failed'].includes(body?.status?.restore?.state) ? body : undefined;
    },
    `${name} restored`,
    CONVERGE_MS,
  );
  expect(db.status.restore.state, db.status.restore.message).toBe('Succeeded');
  return db;
}

/** The rows a PostgreSQL backup is checked against. */
async function seedRows(api: Api, name: string): Promise<void> {
  await sql(api, name, 'CREATE TABLE items (id int PRIMARY KEY, label text)');
  await sql(api, name, "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g");
}

/** Enough rows for a dump of two multipart parts at 5 MiB (random text barely compresses). */
export async function seedManyRows(api: Api, name: string): Promise<void> {
  await sql(api, name, 'CREATE TABLE items (id int PRIMARY KEY, label text)');
  await sql(
    api,
    name,
    'INSERT INTO items SELECT g, md5(random()::text) || md5(random()::text) FROM generate_series(1, 160000) g',
  );
}

async function rowsOf(api: Api, name: string): Promise<number> {
  return Number((await sql(api, name, 'SELECT count(*) AS n FROM items'))[0].n);
}

/** A database with data and a Succeeded backup of it (the setup of the restore scenarios). */
async function backedUp(api: Api): Promise<void> {
  await project(api);
  await createDb(api, 'orders', ENGINE.postgres);
  await phase(api, 'orders', 'Ready');
  await seedRows(api, 'orders');
  await ok(api.call('POST', `${P}/backups`, { metadata: { name: 'nightly' }, spec: { database: 'orders' } }));
  expect((await backupDone(api, 'nightly')).status.phase).toBe('Succeeded');
}

export const databaseScenarios: Scenario[] = [
  {
    name: 'create a PostgreSQL database (templates built on the way)',
    freshTemplates: true,
    setup: project,
    act: (api) => createDb(api, 'orders', ENGINE.postgres),
    converged: async (api) => {
      await phase(api, 'orders', 'Ready');
      expect(await sql(api, 'orders', 'SELECT current_user AS u')).toEqual([{ u: 'orders' }]);
      return { liveInstances: [await uidOf(api, 'orders')], runningServers: 1 };
    },
  },
  {
    name: 'create a Redis database',
    setup: project,
    act: (api) => createDb(api, 'cache', ENGINE.redis),
    converged: async (api) => {
      await phase(api, 'cache', 'Ready');
      expect(await redis(api, 'cache', (r) => r.ping())).toBe('PONG');
      return { liveInstances: [await uidOf(api, 'cache')], runningServers: 2 };
    },
  },
  {
    name: 'update a parameter that needs a restart',
    setup: readyOrders,
    act: (api) =>
      ok(api.call('PATCH', `${P}/databases/orders`, { spec: { parameters: { max_connections: 77 } } })),
    converged: async (api) => {
      const db = await phase(api, 'orders', 'Ready');
      expect(db.metadata.generation).toBe(2);
      expect(await sql(api, 'orders', 'SHOW max_connections')).toEqual([{ max_connections: '77' }]);
      return { liveInstances: [db.metadata.uid], runningServers: 1 };
    },
  },
  {
    name: 'update a reloadable parameter and the ACL',
    setup: readyOrders,
    act: (api) =>
      ok(
        api.call('PATCH', `${P}/databases/orders`, {
          spec: { parameters: { work_mem: 8192 }, acl: [{ cidr: '127.0.0.1/32' }, { cidr: '10.9.8.0/24' }] },
        }),
      ),
    converged: async (api) => {
      const db = await phase(api, 'orders', 'Ready');
      expect(db.metadata.generation).toBe(2);
      expect(await sql(api, 'orders', 'SHOW work_mem')).toEqual([{ work_mem: '8MB' }]);
      const acl = db.status.conditions.find((c: { type: string }) => c.type === 'AclApplied');
      expect(acl.message).toBe('2 ACL entries enforced');
      return { liveInstances: [db.metadata.uid], runningServers: 1 };
    },
  },
  {
    name: 'stop a Redis database',
    setup: async (api) => {
      await project(api);
      await createDb(api, 'cache', ENGINE.redis);
      await phase(api, 'cache', 'Ready');
    },
    act: (api) => ok(api.call('PATCH', `${P}/databases/cache`, { spec: { stopped: true } })),
    converged: async (api) => {
      const db = await phase(api, 'cache', 'Stopped');
      return { liveInstances: [db.metadata.uid], runningServers: 0 };
    },
  },
  {
    name: 'update a Redis parameter that needs a restart',
    setup: async (api) => {
      await project(api);
      await createDb(api, 'cache', ENGINE.redis);
      await phase(api, 'cache', 'Ready');
    },
    act: (api) => ok(api.call('PATCH', `${P}/databases/cache`, { spec: { parameters: { databases: 32 } } })),
    converged: async (api) => {
      const db = await phase(api, 'cache', 'Ready');
      // The server runs the new setting: database 31 exists only with databases 32.
      expect(await redis(api, 'cache', (r) => r.select(31))).toBe('OK');
      return { liveInstances: [db.metadata.uid], runningServers: 2 };
    },
  },
  {
    name: 'rotate the credentials',
    setup: readyOrders,
    act: async (api) => void (await credentials(api, 'orders', true)),
    converged: async (api) => {
      const now = await credentials(api, 'orders');
      expect(now.version).toBe(2);
      // A rotation changes no spec: the server has the new password once status says so.
      const db = await waitFor(
        async () => {
          const ready = await phase(api, 'orders', 'Ready');
          return ready.status.credentialsVersion === 2 ? ready : undefined;
        },
        'the rotated credentials applied',
        CONVERGE_MS,
      );
      expect(await sql(api, 'orders', 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      return { liveInstances: [db.metadata.uid], runningServers: 1 };
    },
  },
  {
    name: 'stop a database',
    setup: readyOrders,
    act: (api) => ok(api.call('PATCH', `${P}/databases/orders`, { spec: { stopped: true } })),
    converged: async (api) => {
      const db = await phase(api, 'orders', 'Stopped');
      return { liveInstances: [db.metadata.uid], runningServers: 0 };
    },
  },
  {
    name: 'start a stopped database',
    setup: async (api) => {
      await project(api);
      await createDb(api, 'orders', { ...ENGINE.postgres, stopped: true });
      await phase(api, 'orders', 'Stopped');
    },
    act: (api) => ok(api.call('PATCH', `${P}/databases/orders`, { spec: { stopped: false } })),
    converged: async (api) => {
      const db = await phase(api, 'orders', 'Ready');
      expect(await sql(api, 'orders', 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      return { liveInstances: [db.metadata.uid], runningServers: 1 };
    },
  },
  {
    name: 'delete a database',
    // Seconds of it counted and reported before it is deleted, so that its deletion has a last
    // quarter-hour to report (a database deleted in the second it was made has none).
    setup: async (api) => {
      await readyOrders(api);
      await waitFor(
        async () => {
          const { body } = await api.call('GET', `${P}/usage`);
          const orders = body?.resources?.find((r: { name: string }) => r.name === 'orders');
          return orders?.coverage?.observedSeconds >= 2 ? orders : undefined;
        },
        'usage of orders reported',
        CONVERGE_MS,
      );
    },
    act: (api) => ok(api.call('DELETE', `${P}/databases/orders`)),
    converged: async (api) => {
      await waitFor(
        async () => ((await api.call('GET', `${P}/databases/orders`)).status === 404 ? true : undefined),
        'orders deleted',
        CONVERGE_MS,
      );
      return { liveInstances: [], runningServers: 0 };
    },
  },
];

export { createDb, phase, project, ENGINE, ok };

/**
 * The crash points each suite must reach (its afterAll checks); together every point in the
 * source (faults/crash-points.test.ts checks), so a new step that changes something outside the
 * store cannot go untested.
 */
export const CRASH_POINTS = {
  databases: [
    'local.apply.applied-saved',
    'local.apply.config-written',
    'local.credentials.applied',
    'local.credentials.saved',
    'local.delete.intent-saved',
    'local.delete.removed',
    'local.delete.stopped',
    'local.provision.allocated',
    'local.provision.saved',
    'local.reload.reloaded',
    'local.restart.started',
    'local.restart.stopped',
    'local.start.intent-saved',
    'local.start.started',
    'local.stop.intent-saved',
    'local.stop.stopped',
    'postgres.credentials.admin-password-recorded',
    'postgres.credentials.admin-password-set',
    'postgres.credentials.role-set',
    'postgres.provision.copied',
    'postgres.provision.password-saved',
    'postgres.template.initialised',
    'postgres.template.password-saved',
    'postgres.template.ready',
    'redis.start.server-started',
    'redis.stop.proxy-stopped',
  ],
  backups: [
    'backup.delete.object-removed',
    'backup.dump-started',
    'backup.manifest-stored',
    'backup.object-stored',
    'redis.restore.snapshot-placed',
    'redis.start.append-only-written',
    'redis.restore.snapshot-written',
    'redis.restore.stopped',
  ],
  restores: ['restore.loaded', 'verify.restored', 'verify.scratch-ready', 'verify.scratch-removed'],
  mariadb: [
    'mariadb.credentials.admin-password-recorded',
    'mariadb.credentials.admin-password-set',
    'mariadb.credentials.user-set',
    'mariadb.provision.copied',
    'mariadb.provision.password-saved',
    'mariadb.restore.dropped',
    'mariadb.start.server-started',
    'mariadb.stop.proxy-stopped',
    'mariadb.template.initialised',
    'mariadb.template.password-saved',
    'mariadb.template.ready',
  ],
  s3: ['s3.part-uploaded'],
  metering: ['usage.journal-saved', 'usage.reported'],
} as const;

export const backupScenarios: Scenario[] = [
  {
    name: 'restore a Redis backup in place',
    setup: async (api) => {
      await project(api);
      await createDb(api, 'cache', ENGINE.redis);
      await phase(api, 'cache', 'Ready');
      await redis(api, 'cache', async (r) => {
        for (let i = 0; i < 20; i++) await r.set(`k${i}`, `v${i}`);
      });
      await ok(api.call('POST', `${P}/backups`, { metadata: { name: 'snap' }, spec: { database: 'cache' } }));
      expect((await backupDone(api, 'snap')).status.phase).toBe('Succeeded');
      await redis(api, 'cache', (r) => r.flushall());
    },
    act: (api) => ok(api.call('POST', `${P}/databases/cache/restore`, { backup: 'snap' })),
    converged: async (api) => {
      const db = await restored(api, 'cache');
      await phase(api, 'cache', 'Ready');
      expect(await redis(api, 'cache', (r) => r.dbsize())).toBe(20);
      return { liveInstances: [db.metadata.uid], runningServers: 2 };
    },
  },
  {
    name: 'delete a backup',
    setup: backedUp,
    act: (api) => ok(api.call('DELETE', `${P}/backups/nightly`)),
    converged: async (api, { dataDir }) => {
      await waitFor(
        async () => ((await api.call('GET', `${P}/backups/nightly`)).status === 404 ? true : undefined),
        'nightly deleted',
        CONVERGE_MS,
      );
      expect(await backupFiles(dataDir)).toEqual([]);
      return { liveInstances: [await uidOf(api, 'orders')], runningServers: 1 };
    },
  },
  {
    name: 'take a backup',
    setup: async (api) => {
      await project(api);
      await createDb(api, 'orders', ENGINE.postgres);
      await phase(api, 'orders', 'Ready');
      await seedRows(api, 'orders');
    },
    act: (api) =>
      ok(api.call('POST', `${P}/backups`, { metadata: { name: 'nightly' }, spec: { database: 'orders' } })),
    converged: async (api, { dataDir }) => {
      const backup = await backupDone(api, 'nightly');
      expect(backup.status.phase, JSON.stringify(backup.status)).toBe('Succeeded');
      expect(backup.status.tables).toEqual([
        { name: 'public.items', rows: 500, checksum: expect.any(String) },
      ]);
      // Exactly one object and its manifest: a retaken backup replaced what the interrupted one stored.
      expect(await backupFiles(dataDir)).toEqual([
        backup.status.object.key,
        `${backup.status.object.key}.manifest.json`,
      ]);
      return { liveInstances: [await uidOf(api, 'orders')], runningServers: 1 };
    },
  },
  {
    name: 'take two backups of one database at once',
    setup: async (api) => {
      await readyOrders(api);
      await seedRows(api, 'orders');
    },
    act: async (api) => {
      for (const name of ['first', 'second'])
        await ok(api.call('POST', `${P}/backups`, { metadata: { name }, spec: { database: 'orders' } }));
    },
    converged: async (api, { dataDir }) => {
      const keys: string[] = [];
      for (const name of ['first', 'second']) {
        const backup = await backupDone(api, name);
        expect(backup.status.phase, `${name}: ${JSON.stringify(backup.status)}`).toBe('Succeeded');
        keys.push(backup.status.object.key, `${backup.status.object.key}.manifest.json`);
      }
      expect(await backupFiles(dataDir)).toEqual(keys.sort());
      return { liveInstances: [await uidOf(api, 'orders')], runningServers: 1 };
    },
  },
];

/** Verification, in-place restore and forks: a file of their own, so that both test workers share the backup suites. */
export const restoreScenarios: Scenario[] = [
  {
    name: 'verify a backup',
    setup: backedUp,
    act: (api) => ok(api.call('POST', `${P}/backups/nightly/verify`)),
    converged: async (api) => {
      const backup = await waitFor(
        async () => {
          const { body } = await api.call('GET', `${P}/backups/nightly`);
          return ['Passed', 'Failed'].includes(body?.status?.verification?.state) ? body : undefined;
        },
        'verification done',
        CONVERGE_MS,
      );
      expect(backup.status.verification.state, backup.status.verification.message).toBe('Passed');
      // The scratch instance is gone: only the database's own instance lives.
      return { liveInstances: [await uidOf(api, 'orders')], runningServers: 1 };
    },
  },
  {
    name: 'restore a backup in place',
    setup: async (api) => {
      await backedUp(api);
      await sql(api, 'orders', 'DELETE FROM items WHERE id > 100');
    },
    act: (api) => ok(api.call('POST', `${P}/databases/orders/restore`, { backup: 'nightly' })),
    converged: async (api) => {
      const db = await restored(api, 'orders');
      await phase(api, 'orders', 'Ready');
      expect(await rowsOf(api, 'orders')).toBe(500);
      // The safety backup was taken once, and holds the data from before the restore.
      const { body } = await api.call('GET', `${P}/backups`);
      const safety = body.items.filter((b: any) => b.metadata.labels?.['kumo.dev/safety-backup'] === 'true');
      expect(safety).toHaveLength(1);
      expect((await backupDone(api, safety[0].metadata.name)).status.tables[0].rows).toBe(100);
      return { liveInstances: [db.metadata.uid], runningServers: 1 };
    },
  },
  {
    name: 'fork a database from a backup',
    setup: backedUp,
    act: (api) => createDb(api, 'orders-copy', { ...ENGINE.postgres, restoreFrom: { backup: 'nightly' } }),
    converged: async (api) => {
      const fork = await phase(api, 'orders-copy', 'Ready');
      expect(fork.status.restore?.state).toBe('Succeeded');
      expect(await rowsOf(api, 'orders-copy')).toBe(500);
      return { liveInstances: [await uidOf(api, 'orders'), fork.metadata.uid], runningServers: 2 };
    },
  },
];

/** Object keys under the filesystem backup store, sorted. */
async function backupFiles(dataDir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const { join, relative } = await import('node:path');
  const root = join(dataDir, 'backups');
  const found: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else found.push(relative(root, path));
    }
  };
  await walk(root);
  return found.sort();
}

/** MariaDB's steps: its template, provisioning, credentials, stop and in-place restore. */
export const mariadbScenarios: Scenario[] = [
  {
    name: 'create a MariaDB database (its template built on the way)',
    freshTemplates: true,
    setup: project,
    act: (api) => createDb(api, 'shopdb', ENGINE.mariadb),
    converged: async (api) => {
      await phase(api, 'shopdb', 'Ready');
      expect(await mariadb(api, 'shopdb', 'SELECT DATABASE() AS d')).toEqual([{ d: 'shopdb' }]);
      return { liveInstances: [await uidOf(api, 'shopdb')], runningServers: 2 };
    },
  },
  {
    name: 'rotate the credentials of a MariaDB database',
    setup: readyMariadb,
    act: (api) => credentials(api, 'shopdb', true),
    converged: async (api) => {
      const db = await waitFor(
        async () => {
          const { body } = await api.call('GET', `${P}/databases/shopdb`);
          return body?.status?.credentialsVersion === 2 ? body : undefined;
        },
        'credentials version 2 applied',
        CONVERGE_MS,
      );
      await phase(api, 'shopdb', 'Ready');
      expect(await mariadb(api, 'shopdb', 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      return { liveInstances: [db.metadata.uid], runningServers: 2 };
    },
  },
  {
    name: 'stop a MariaDB database',
    setup: readyMariadb,
    act: (api) => ok(api.call('PATCH', `${P}/databases/shopdb`, { spec: { stopped: true } })),
    converged: async (api) => {
      const db = await phase(api, 'shopdb', 'Stopped');
      return { liveInstances: [db.metadata.uid], runningServers: 0 };
    },
  },
  {
    name: 'restore a MariaDB backup in place',
    setup: async (api) => {
      await readyMariadb(api);
      await mariadb(api, 'shopdb', 'CREATE TABLE items (id INT PRIMARY KEY, label TEXT)');
      await mariadb(
        api,
        'shopdb',
        `INSERT INTO items VALUES ${Array.from({ length: 50 }, (_, i) => `(${i + 1}, 'item ${i + 1}')`).join(', ')}`,
      );
      await ok(
        api.call('POST', `${P}/backups`, { metadata: { name: 'snap' }, spec: { database: 'shopdb' } }),
      );
      expect((await backupDone(api, 'snap')).status.phase).toBe('Succeeded');
      await mariadb(api, 'shopdb', 'DELETE FROM items WHERE id > 10');
    },
    act: (api) => ok(api.call('POST', `${P}/databases/shopdb/restore`, { backup: 'snap' })),
    converged: async (api) => {
      const db = await restored(api, 'shopdb');
      await phase(api, 'shopdb', 'Ready');
      expect(await mariadb(api, 'shopdb', 'SELECT COUNT(*) AS n FROM items')).toEqual([{ n: 50 }]);
      return { liveInstances: [db.metadata.uid], runningServers: 2 };
    },
  },
];

/**
 * Metering: a crash while the agent saves or reports its usage (after the control plane took a
 * report, before the agent wrote that down) loses nothing it had saved and counts nothing twice.
 * A deletion reports a database's last quarter-hour at once, final, before the database is gone.
 */
export const meteringScenarios: Scenario[] = [
  {
    name: 'delete a database: its last usage is reported, once',
    env: () => ({ KUMO_USAGE_REPORT_SECONDS: '1' }),
    // Seconds of it counted and reported before it is deleted, so that its deletion has a last
    // quarter-hour to report (a database deleted in the second it was made has none).
    setup: async (api) => {
      await readyOrders(api);
      await waitFor(
        async () => {
          const { body } = await api.call('GET', `${P}/usage`);
          const orders = body?.resources?.find((r: { name: string }) => r.name === 'orders');
          return orders?.coverage?.observedSeconds >= 2 ? orders : undefined;
        },
        'usage of orders reported',
        CONVERGE_MS,
      );
    },
    act: (api) => ok(api.call('DELETE', `${P}/databases/orders`)),
    converged: async (api) => {
      const usage = await waitFor(
        async () => {
          const { body } = await api.call('GET', `${P}/usage`);
          const orders = body?.resources?.find((r: { name: string }) => r.name === 'orders');
          return orders?.deleted ? orders : undefined;
        },
        'orders deleted and its usage reported',
        CONVERGE_MS,
      ).catch(async (err: Error) => {
        const { status, body } = await api.call('GET', `${P}/usage`);
        throw new Error(`${err.message}; usage (${status}): ${JSON.stringify(body)}`);
      });
      const runtime = usage.lines.filter((l: { meter: string }) => l.meter === 'database.runtime');
      const seconds = runtime.reduce((sum: number, l: { seconds: number }) => sum + l.seconds, 0);
      // Never more than it existed: a report sent again after the crash was counted once. (A crash
      // before the agent first saved its usage loses those seconds: missing, not made up.) The
      // agent counts whole seconds of its clock and the store stamps creation and deletion to the
      // microsecond: the two round apart by at most one second; a report counted twice is many.
      expect(usage.coverage.observedSeconds).toBeLessThanOrEqual(usage.coverage.expectedSeconds);
      expect(seconds).toBeLessThanOrEqual(usage.coverage.expectedSeconds + 1);
      return { liveInstances: [], runningServers: 0 };
    },
  },
];
