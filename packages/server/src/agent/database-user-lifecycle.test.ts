import { connect } from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DatabaseTestKumo, databaseHelpers, startKumoWithProject } from '../testing/database-helpers.js';
import { queryFrom } from '../testing/pg-connect.js';
import { redisFrom } from '../testing/redis-connect.js';
import { waitFor } from '../testing/wait.js';

// DatabaseUsers against real servers of every engine, through the HTTP API: a login of its own
// that works once Ready, with the access it asked for, and stops working when it is deleted.
let t: DatabaseTestKumo;
const PROJECT = 'people';
const USERS = `/v1/projects/${PROJECT}/databaseusers`;
const FROM = '127.0.0.2';

beforeAll(async () => {
  t = await startKumoWithProject(inject('pg'), PROJECT);
}, 60_000);
afterAll(async () => {
  await t?.stop();
});

const { collection, json, ready } = databaseHelpers(() => t, PROJECT);

interface Creds {
  username: string;
  password: string;
  database: string;
  host: string;
  port: number;
  uri: string;
}

/** Logs in as creds and writes (write: true) or reads; resolves what the server answered, or rejects as it refused. */
interface Client {
  write(c: Creds): Promise<unknown>;
  read(c: Creds): Promise<unknown>;
  /** The error a refused login gives, as a pattern. */
  refused: RegExp;
  /** Tries, as a user, to act as the owner: each must be refused. */
  takeOver?: (c: Creds, owner: Creds) => Array<() => Promise<unknown>>;
}

const CLIENTS: Record<string, { spec: Record<string, unknown>; client: Client }> = {
  postgres: {
    spec: { engine: 'postgres', version: '15', plan: 'small' },
    client: {
      write: (c) =>
        queryFrom(c.uri, FROM, 'CREATE TABLE IF NOT EXISTS notes (t text); INSERT INTO notes VALUES (1)'),
      read: (c) => queryFrom(c.uri, FROM, 'SELECT count(*) FROM notes'),
      refused: /password authentication failed|not permitted to log in/,
      takeOver: (c, owner) => [
        () => queryFrom(c.uri, FROM, `SET ROLE "${owner.username}"`),
        () => queryFrom(c.uri, FROM, `ALTER ROLE "${owner.username}" PASSWORD 'taken'`),
      ],
    },
  },
  redis: {
    spec: { engine: 'redis', version: '7', plan: 'small' },
    client: {
      write: (c) => redisCommand(c, ['SET', 'note', '1']),
      read: (c) => redisCommand(c, ['GET', 'note']),
      refused: /WRONGPASS/,
    },
  },
  mariadb: {
    spec: { engine: 'mariadb', version: '10.11', plan: 'small' },
    client: {
      write: (c) =>
        mariadb(c, ['CREATE TABLE IF NOT EXISTS notes (t text)', "INSERT INTO notes VALUES ('1')"]),
      read: (c) => mariadb(c, ['SELECT count(*) FROM notes']),
      refused: /Access denied/,
    },
  },
};

async function redisCommand(c: Creds, command: string[]): Promise<string> {
  const out = await redisFrom(c.port, FROM, [['AUTH', c.username, c.password], command]);
  if (!out.startsWith('+OK')) throw new Error(out);
  const reply = out.slice(out.indexOf('\r\n') + 2);
  if (reply.startsWith('-')) throw new Error(reply);
  return reply;
}

async function mariadb(c: Creds, statements: string[]): Promise<unknown> {
  const connection = await mysql.createConnection({
    stream: () => connect({ host: '127.0.0.1', port: c.port, localAddress: FROM }),
    user: c.username,
    password: c.password,
    database: c.database,
    connectTimeout: 5000,
  });
  connection.on('error', () => undefined);
  try {
    let last: unknown;
    for (const statement of statements) [last] = await connection.query(statement);
    return last;
  } finally {
    connection.destroy();
  }
}

const userReady = (name: string) =>
  waitFor(
    async () => {
      const user = await json(t.request(`${USERS}/${name}`));
      const cond = user.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
      return user.status?.phase === 'Ready' && cond?.status === 'True' ? user : undefined;
    },
    `${name} Ready`,
    60_000,
  );

const credentialsOf = async (name: string): Promise<Creds> =>
  (await json(t.request(`${USERS}/${name}/credentials`))) as Creds;

describe.each(Object.entries(CLIENTS))('DatabaseUsers of %s', (engine, { spec, client }) => {
  const db = `${engine}-users`;

  it('gives each user its own login with its access, and deleting one ends just its login', async () => {
    const created = await t.request(collection, {
      method: 'POST',
      json: { metadata: { name: db }, spec: { ...spec, acl: [{ cidr: `${FROM}/32` }] } },
    });
    expect(created.status).toBe(201);
    for (const [name, access] of [
      [`${db}-app`, 'read-write'],
      [`${db}-reader`, 'read-only'],
    ]) {
      const res = await t.request(USERS, {
        method: 'POST',
        json: { metadata: { name }, spec: { database: db, access } },
      });
      expect(res.status).toBe(201);
      expect(((await res.json()) as any).metadata.finalizers).toContain('kumo.dev/database-user');
    }
    await ready(db);
    const app = await userReady(`${db}-app`);
    expect(app.status.username).toBe(`u_${db}-app`);
    await userReady(`${db}-reader`);

    const appCreds = await credentialsOf(`${db}-app`);
    const readerCreds = await credentialsOf(`${db}-reader`);
    const owner: Creds = await json(t.request(`${collection}/${db}/credentials`));
    expect(appCreds.username).toBe(`u_${db}-app`);
    expect(appCreds.password).not.toBe(owner.password);
    expect(appCreds.uri).toContain(String(owner.port));

    await client.write(appCreds);
    for (const attempt of client.takeOver?.(appCreds, owner) ?? [])
      await expect(attempt(), 'a user cannot act as the owner, nor change its password').rejects.toThrow(
        /permission denied/,
      );
    await expect(client.read(readerCreds)).resolves.toBeDefined();
    await expect(client.write(readerCreds), 'a read-only user cannot write').rejects.toThrow();
    await expect(client.read(owner), "the owner sees the app user's data").resolves.toBeDefined();

    expect((await t.request(`${USERS}/${db}-app`, { method: 'DELETE' })).status).toBe(202);
    await waitFor(
      async () => ((await t.request(`${USERS}/${db}-app`)).status === 404 ? true : undefined),
      `${db}-app gone`,
      60_000,
    );
    await expect(client.read(appCreds), 'a deleted user cannot log in').rejects.toThrow(client.refused);
    await expect(client.read(readerCreds), 'the other user keeps working').resolves.toBeDefined();
    await expect(client.read(owner)).resolves.toBeDefined();
  }, 180_000);
});

describe('a deleted database', () => {
  it('takes its users with it, and goes once they are gone', async () => {
    const created = await t.request(collection, {
      method: 'POST',
      json: { metadata: { name: 'short-lived' }, spec: { engine: 'postgres', version: '15', plan: 'small' } },
    });
    expect(created.status).toBe(201);
    const user = await t.request(USERS, {
      method: 'POST',
      json: { metadata: { name: 'short-lived-app' }, spec: { database: 'short-lived' } },
    });
    expect(user.status).toBe(201);
    await userReady('short-lived-app');

    expect((await t.request(`${collection}/short-lived`, { method: 'DELETE' })).status).toBe(202);
    await waitFor(
      async () =>
        (await t.request(`${USERS}/short-lived-app`)).status === 404 &&
        (await t.request(`${collection}/short-lived`)).status === 404
          ? true
          : undefined,
      'the database and its user to be gone',
      60_000,
    );
  }, 120_000);
});

describe('DatabaseUser admission', () => {
  it('refuses a user of a database that does not exist, naming the field', async () => {
    const res = await t.request(USERS, {
      method: 'POST',
      json: { metadata: { name: 'orphan' }, spec: { database: 'nowhere' } },
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as any).errors[0].field).toBe('spec.database');
  });

  it('keeps the database and access it was created with', async () => {
    const res = await t.request(`${USERS}/postgres-users-reader`, {
      method: 'PATCH',
      json: { spec: { access: 'read-write' } },
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as any).errors[0].field).toBe('spec.access');
  });
});
