import { readFile, readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DatabaseTestKumo, databaseHelpers, startKumoWithProject } from '../testing/database-helpers.js';
import { waitFor } from '../testing/wait.js';

// What only MariaDB shows, against real mariadbd processes behind Kumo's ACL proxy and real
// mariadb-dump, through the HTTP API; what every engine does is the shared suite (engine-mariadb.test.ts).
let t: DatabaseTestKumo;
const DB = '/v1/projects/dock/databases';
const BACKUPS = '/v1/projects/dock/backups';

beforeAll(async () => {
  t = await startKumoWithProject(inject('pg'), 'dock');
});
afterAll(async () => {
  if (!t) return;
  // Servers run detached from Kumo: what a failed test left running is ended here, not leaked.
  const root = join(t.dataDir, 'databases');
  for (const uid of await readdir(root).catch(() => [] as string[]))
    for (const file of ['mariadb.pid', 'acl-proxy.pid']) {
      const pid = Number(
        (await readFile(join(root, uid, 'run', file), 'utf8').catch(() => '')).split('\n')[0],
      );
      try {
        if (pid > 0) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  await t.stop();
});

const { json, ready } = databaseHelpers(() => t, 'dock');

interface Creds {
  username: string;
  password: string;
  port: number;
  uri: string;
}

/** Runs statements from a local source address, as the database's credentials or others; returns the last one's rows. */
async function sqlFrom(
  creds: Creds,
  source: string,
  statements: string[],
  as: { user?: string; password?: string; database?: string | null } = {},
): Promise<any[]> {
  const c = await mysql.createConnection({
    stream: fromAddress(creds.port, source),
    user: as.user ?? creds.username,
    password: as.password ?? creds.password,
    ...(as.database === null ? {} : { database: as.database ?? creds.username }),
    connectTimeout: 5000,
  });
  c.on('error', () => undefined);
  try {
    let rows: any = [];
    for (const statement of statements) [rows] = await c.query(statement);
    return rows;
  } finally {
    c.destroy();
  }
}

/** The error a connection or statement fails with ('' when it works). */
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => '',
    (err: Error & { code?: string }) => err.code ?? err.message,
  );

function finished(path: string, done: (r: any) => boolean, what: string): Promise<any> {
  return waitFor(async () => {
    const r = await json(t.request(path));
    return done(r) ? r : undefined;
  }, what);
}

describe('managed MariaDB', () => {
  let creds: Creds;

  it('provisions a MariaDB whose credentials serve an allowed address and no other', async () => {
    const res = await t.request(DB, {
      method: 'POST',
      json: {
        metadata: { name: 'shop' },
        spec: { engine: 'mariadb', version: '10.11', plan: 'small', acl: [{ cidr: '127.0.0.2/32' }] },
      },
    });
    expect(res.status).toBe(201);
    await ready('shop');
    creds = await json(t.request(`${DB}/shop/credentials`));
    expect(creds.uri).toMatch(/^mysql:\/\/shop:[^@]+@[^:]+:\d+\/shop$/);
    const rows = await sqlFrom(creds, '127.0.0.2', [
      'CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2), added TIMESTAMP NULL)',
      "INSERT INTO items VALUES (1, 'kettle', 24.50, '2024-03-01 10:00:00'), (2, 'mug', 6.00, NULL)",
      'SELECT name FROM items ORDER BY id',
    ]);
    expect(rows).toEqual([{ name: 'kettle' }, { name: 'mug' }]);
    expect(await failure(sqlFrom(creds, '127.0.0.2', ['SELECT 1'], { password: 'wrong' }))).toBe(
      'ER_ACCESS_DENIED_ERROR',
    );
    expect(await failure(sqlFrom(creds, '127.0.0.3', ['SELECT 1']))).not.toBe(''); // closed by the proxy
  });

  it('gives the credentials their own database and nothing else, and no account but them is reachable', async () => {
    const denied = async (statement: string) => failure(sqlFrom(creds, '127.0.0.2', [statement]));
    expect(await sqlFrom(creds, '127.0.0.2', ['SHOW DATABASES'])).toEqual([
      { Database: 'information_schema' },
      { Database: 'shop' },
    ]);
    expect(await denied('SELECT * FROM mysql.global_priv')).toBe('ER_TABLEACCESS_DENIED_ERROR');
    expect(await denied('SELECT * FROM sys.version')).toMatch(/DENIED/);
    expect(await denied('CREATE DATABASE elsewhere')).toBe('ER_DBACCESS_DENIED_ERROR');
    expect(await denied('SET GLOBAL max_connections = 1000')).toBe('ER_SPECIFIC_ACCESS_DENIED_ERROR');
    expect(await denied("CREATE USER 'friend'@'%'")).toBe('ER_SPECIFIC_ACCESS_DENIED_ERROR');
    expect(await denied('SHUTDOWN')).toBe('ER_SPECIFIC_ACCESS_DENIED_ERROR');
    expect(await sqlFrom(creds, '127.0.0.2', ["SELECT LOAD_FILE('/etc/passwd') IS NULL AS blocked"])).toEqual(
      [{ blocked: 1 }],
    ); // no FILE right
    expect(await sqlFrom(creds, '127.0.0.2', ['SHOW GRANTS'])).toEqual([
      {
        'Grants for shop@%': expect.stringMatching(
          /^GRANT USAGE ON \*\.\* TO `shop`@`%` IDENTIFIED BY PASSWORD/,
        ),
      },
      { 'Grants for shop@%': 'GRANT ALL PRIVILEGES ON `shop`.* TO `shop`@`%`' },
    ]);
    for (const user of ['root', 'kumo_admin', 'kumo', 'mysql', ''])
      expect(
        await failure(sqlFrom(creds, '127.0.0.2', ['SELECT 1'], { user, password: '', database: null })),
        user,
      ).toBe('ER_ACCESS_DENIED_ERROR');
  });

  it('backs up the facts of the dumped snapshot while writes go on, verifies, and restores into a new database', async () => {
    await sqlFrom(creds, '127.0.0.2', [
      'CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(20), raw VARBINARY(8))',
      "INSERT INTO log (note, raw) SELECT CONCAT('row ', seq), UNHEX('00FF10') FROM seq_1_to_5000",
      'CREATE VIEW cheap AS SELECT name FROM items WHERE price < 10',
      "CREATE TRIGGER stamp BEFORE INSERT ON items FOR EACH ROW SET NEW.added = COALESCE(NEW.added, '2000-01-01')",
    ]);
    // Writes keep committing while the backup runs: its facts must still describe what it dumped.
    let writing = true;
    const writes = (async () => {
      const c = await mysql.createConnection({
        stream: fromAddress(creds.port, '127.0.0.2'),
        user: creds.username,
        password: creds.password,
        database: creds.username,
      });
      c.on('error', () => undefined);
      try {
        while (writing) await c.query("INSERT INTO log (note) VALUES ('during')");
      } finally {
        c.destroy();
      }
    })();
    const res = await t.request(BACKUPS, {
      method: 'POST',
      json: { metadata: { name: 'shop-1' }, spec: { database: 'shop' } },
    });
    expect(res.status).toBe(201);
    const b = await finished(
      `${BACKUPS}/shop-1`,
      (x) => ['Succeeded', 'Failed'].includes(x.status.phase),
      'backup shop-1 to finish',
    );
    writing = false;
    await writes;
    const [{ n: now }] = await sqlFrom(creds, '127.0.0.2', ['SELECT COUNT(*) AS n FROM log']);
    expect(b.status.phase, JSON.stringify(b.status.conditions)).toBe('Succeeded');
    expect(b.status.object).toMatchObject({
      format: 'application/sql',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(b.status.tool).toMatch(/^mariadb-dump/);
    expect(b.status.tables.map((x: { name: string }) => x.name)).toEqual(['items', 'log']);
    expect(b.status.tables[1].rows).toBeGreaterThanOrEqual(5000);
    expect(now).toBeGreaterThan(b.status.tables[1].rows); // the source moved on after the snapshot
    expect(b.status.tables[1].checksum).toMatch(/^\d+$/);

    await t.request(`${BACKUPS}/shop-1/verify`, { method: 'POST' });
    const verified = await finished(
      `${BACKUPS}/shop-1`,
      (x) => x.status.verification && x.status.verification.state !== 'Running',
      'backup shop-1 to be verified',
    );
    expect(verified.status.verification, verified.status.verification.message).toMatchObject({
      state: 'Passed',
    });
    expect(verified.status.verification.message).toMatch(/row counts and checksums match/);

    const fork = await t.request(DB, {
      method: 'POST',
      json: {
        metadata: { name: 'shop-copy' },
        spec: {
          engine: 'mariadb',
          version: '10.11',
          plan: 'small',
          acl: [{ cidr: '127.0.0.2/32' }],
          restoreFrom: { backup: 'shop-1' },
        },
      },
    });
    expect(fork.status).toBe(201);
    const copy = await ready('shop-copy');
    expect(copy.status.restore).toMatchObject({ backup: 'shop-1', state: 'Succeeded' });
    const copyCreds: Creds = await json(t.request(`${DB}/shop-copy/credentials`));
    expect(
      await sqlFrom(copyCreds, '127.0.0.2', ["SELECT COUNT(*) AS n FROM log WHERE raw = UNHEX('00FF10')"]),
    ).toEqual([{ n: 5000 }]);
    expect(await sqlFrom(copyCreds, '127.0.0.2', ['SELECT COUNT(*) AS n FROM log'])).toEqual([
      { n: b.status.tables[1].rows },
    ]);
    expect(await sqlFrom(copyCreds, '127.0.0.2', ['SELECT name FROM cheap ORDER BY name'])).toEqual([
      { name: 'mug' },
    ]);
    await sqlFrom(copyCreds, '127.0.0.2', ["INSERT INTO items (id, name) VALUES (9, 'new')"]); // its trigger runs
    expect(await sqlFrom(copyCreds, '127.0.0.2', ['SELECT added FROM items WHERE id = 9'])).toHaveLength(1);
    await t.request(`${DB}/shop-copy`, { method: 'DELETE' });
  });
});

/** A TCP connection to Kumo's port from a chosen local address (mysql2 ignores its own localAddress option). */
function fromAddress(port: number, localAddress: string) {
  return () => connect({ host: '127.0.0.1', port, localAddress });
}
