import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { InstanceSpec } from '../driver.js';
import { testLocalDriverSetup } from '../../testing/local-driver.js';

const { catalog, newDriver } = await testLocalDriverSetup(31000);
const driver = newDriver();
const made: string[] = [];
afterAll(async () => {
  for (const uid of made) await driver.delete(uid);
  await driver.close();
});

function spec(engine: InstanceSpec['engine'], name: string): InstanceSpec {
  const uid = randomUUID();
  made.push(uid);
  return {
    uid,
    name,
    engine,
    version: catalog.list().find((e) => e.engine === engine)!.versions[0]!,
    plan: catalog.plan(engine, 'small')!,
    storageGB: 1,
    parameters: {},
    acl: ['127.0.0.1/32'],
    stopped: false,
    credentials: { username: name, password: `${name}-password-123`, version: 1 },
  };
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function* replay(data: Buffer): AsyncGenerator<Uint8Array> {
  yield data;
}

async function sql(s: InstanceSpec, text: string): Promise<pg.QueryResult> {
  const seen = await driver.observe(s);
  const client = new pg.Client({
    host: '127.0.0.1',
    port: seen.endpoint!.port,
    user: s.credentials.username,
    password: s.credentials.password,
    database: s.name,
  });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

describe('local driver backups: PostgreSQL', () => {
  it('dumps with facts from the same snapshot, and restores into another instance only', async () => {
    const source = spec('postgres', 'orders');
    await driver.apply(source);
    await sql(source, 'CREATE TABLE items (id int PRIMARY KEY, name text); CREATE TABLE empty (x int)');
    await sql(source, "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5000) g");

    const backup = await driver.backup(source);
    const dump = await collect(backup.body!);
    const facts = await backup.facts;
    expect(dump.subarray(0, 5).toString()).toBe('PGDMP');
    expect(backup.tool).toMatch(/^pg_dump \(PostgreSQL\) \d+/);
    expect(facts.tables).toEqual([
      { name: 'public.empty', rows: 0, checksum: '0' },
      { name: 'public.items', rows: 5000, checksum: expect.stringMatching(/^-?\d+$/) },
    ]);

    const fork = spec('postgres', 'fork');
    await driver.apply(fork);
    await driver.restore(fork, replay(dump), { replace: false });
    expect(await driver.dataFacts(fork)).toEqual(facts);
    const owner = await sql(fork, "SELECT tableowner FROM pg_tables WHERE tablename = 'items'");
    expect(owner.rows[0].tableowner).toBe('fork'); // created as the fork's owner, not a superuser
    expect((await sql(source, 'SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(5000);

    // In place: replaces what is there.
    await sql(source, 'DELETE FROM items WHERE id > 10');
    await driver.restore(source, replay(dump), { replace: true });
    expect(await driver.dataFacts(source)).toEqual(facts);

    // Straight into a file descriptor (a local store's file): the same data, nothing to stream.
    const file = join(tmpdir(), `kumo-direct-${randomUUID()}.dump`);
    const handle = await open(file, 'w');
    try {
      const direct = await driver.backup(source, handle.fd);
      expect(direct.body).toBeUndefined();
      expect(await direct.facts).toEqual(facts);
    } finally {
      await handle.close();
    }
    const written = await readFile(file);
    await rm(file);
    expect(written.subarray(0, 5).toString()).toBe('PGDMP');
    await sql(source, 'DELETE FROM items WHERE id > 10');
    await driver.restore(source, replay(written), { replace: true });
    expect(await driver.dataFacts(source)).toEqual(facts);

    // A checksum that differs when one value differs.
    await sql(fork, "UPDATE items SET name = 'changed' WHERE id = 1");
    const changed = await driver.dataFacts(fork);
    expect(changed.tables[1]!.rows).toBe(5000);
    expect(changed.tables[1]!.checksum).not.toBe(facts.tables[1]!.checksum);
  });

  it('restores a dump that names another database into this one only', async () => {
    // A dump made with --create carries CREATE DATABASE "victim" and \\connect victim.
    const victim = spec('postgres', 'victim');
    await driver.apply(victim);
    await sql(victim, "CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('victim data')");
    const port = (await driver.observe(victim)).endpoint!.port;
    const pgDump = join(catalog.location('postgres', victim.version)!, 'pg_dump');
    const dump = execFileSync(
      pgDump,
      ['-Fc', '--create', '-h', '127.0.0.1', '-p', String(port), '-U', 'victim', '-d', 'victim'],
      {
        env: { PGPASSWORD: victim.credentials.password, PATH: '/usr/bin:/bin' },
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    const target = spec('postgres', 'target');
    await driver.apply(target);
    await driver.restore(target, replay(dump), { replace: false });
    expect((await sql(target, 'SELECT v FROM secrets')).rows).toEqual([{ v: 'victim data' }]);
    const databases = await sql(target, 'SELECT datname FROM pg_database ORDER BY 1');
    expect(databases.rows.map((r) => r.datname)).toEqual(['postgres', 'target', 'template0', 'template1']);
    await sql(victim, "UPDATE secrets SET v = 'changed in victim'");
    expect((await sql(target, 'SELECT v FROM secrets')).rows).toEqual([{ v: 'victim data' }]);
  });

  it('reports a broken dump as a failed restore and leaves the instance as it was', async () => {
    const target = spec('postgres', 'target');
    await driver.apply(target);
    await sql(target, 'CREATE TABLE keep (x int); INSERT INTO keep VALUES (1)');
    const err = await driver
      .restore(target, replay(Buffer.from('PGDMP not really')), { replace: true })
      .catch((e) => e);
    expect(err).toMatchObject({ reason: 'RestoreFailed' });
    expect((await sql(target, 'SELECT count(*)::int AS n FROM keep')).rows[0].n).toBe(1);
  });
});

describe('local driver backups: Redis', () => {
  it('snapshots with redis-cli --rdb and restores the snapshot into another instance', async () => {
    const source = spec('redis', 'cache');
    await driver.apply(source);
    const client = async (s: InstanceSpec) => {
      const seen = await driver.observe(s);
      return new Redis({
        host: '127.0.0.1',
        port: seen.endpoint!.port,
        username: s.credentials.username,
        password: s.credentials.password,
      });
    };
    const r = await client(source);
    for (let i = 0; i < 100; i++) await r.set(`k${i}`, `v${i}`);
    r.disconnect();
    const backup = await driver.backup(source);
    const rdb = await collect(backup.body!);
    expect(rdb.subarray(0, 5).toString()).toBe('REDIS');
    expect((await backup.facts).tables).toEqual([{ name: 'db0', rows: 100, checksum: '' }]);

    const fork = spec('redis', 'cache-fork');
    await driver.apply(fork);
    await driver.restore(fork, replay(rdb), { replace: false });
    const f = await client(fork);
    expect(await f.get('k42')).toBe('v42');
    expect(await f.dbsize()).toBe(100);
    f.disconnect();
  });
});
