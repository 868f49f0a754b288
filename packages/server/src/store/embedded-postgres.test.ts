import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SetupError } from '../errors.js';
import { ensureServiceUser } from '../system/service-user.js';
import { childrenOf, isAlive, postmasterPidOf, signal } from '../testing/postmaster.js';
import { EmbeddedPostgres, type PostgresConnection } from './embedded-postgres.js';
import { findPostgresBinaries } from './postgres-binaries.js';

let dir: string;
let server: EmbeddedPostgres;
let connection: PostgresConnection;
const strays: ChildProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-embedded-'));
  await chmod(dir, 0o711);
  server = newServer(dir);
  connection = await server.start();
  await query('CREATE TABLE kept (v text)');
});
afterAll(async () => {
  for (const child of strays) child.kill('SIGKILL');
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

function newServer(at: string): EmbeddedPostgres {
  return new EmbeddedPostgres({
    dir: at,
    binaries: findPostgresBinaries({ path: process.env.PATH ?? '' }),
    user: ensureServiceUser('kumo'),
  });
}

async function query(sql: string): Promise<unknown[]> {
  const client = new pg.Client(connection);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** SIGKILLs the postmaster, as the kernel's OOM killer or an operator would, and waits until all of it is gone. */
async function killServer(): Promise<number> {
  const pid = await postmasterPidOf(join(dir, 'pgdata'));
  const children = await childrenOf(pid);
  signal(pid, 'SIGKILL');
  await vi.waitFor(async () => expect(await server.isRunning()).toBe(false));
  // Its other processes notice their postmaster's death and exit by themselves.
  for (const child of children)
    await vi.waitFor(async () => expect(await isAlive(child.pid)).toBe(false), { timeout: 30_000 });
  return pid;
}

describe('EmbeddedPostgres', () => {
  it('restarts after its postmaster was killed with SIGKILL, with everything committed before', async () => {
    await query("INSERT INTO kept VALUES ('before the kill')");
    const killed = await killServer();
    expect(existsSync(join(dir, 'pgdata', 'postmaster.pid'))).toBe(true); // left behind by the kill
    await server.restart();
    expect(await server.postmasterPid()).not.toBe(killed);
    expect(await query('SELECT v FROM kept')).toEqual([{ v: 'before the kill' }]);
    await server.restart(); // running: nothing to do
    expect(await query('SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 1 }]);
  });

  it('restarts when the pid in the lock files left by the killed server now names another process', async () => {
    await killServer();
    // What a reused pid (or an unreaped zombie) looks like: the lock files name a live process.
    const other = spawn('sleep', ['600'], { stdio: 'ignore' });
    strays.push(other);
    for (const lock of [join(dir, 'pgdata', 'postmaster.pid'), join(dir, 'run', '.s.PGSQL.5432.lock')]) {
      const lines = (await readFile(lock, 'utf8')).split('\n');
      await writeFile(lock, [String(other.pid), ...lines.slice(1)].join('\n'));
    }
    expect(await server.isRunning()).toBe(false);
    await server.restart();
    expect(await server.isRunning()).toBe(true);
    expect(await query('SELECT v FROM kept')).toEqual([{ v: 'before the kill' }]);
    expect(await isAlive(other.pid!)).toBe(true); // the other process was left alone
  });

  it('refuses to restart a store whose data directory is gone, and creates none', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'kumo-embedded-gone-'));
    try {
      const gone = newServer(empty);
      await expect(gone.restart()).rejects.toThrow(SetupError);
      await expect(gone.restart()).rejects.toThrow(/will not create an empty store/);
      expect(existsSync(join(empty, 'pgdata'))).toBe(false);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
