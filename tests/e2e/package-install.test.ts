import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '../../packages/server/src/testing/test-postgres.js';
import { killProcessesUnder, startKumoChild } from '../support/kumo-child.js';

// The install path a provider takes: `npm pack` of the built command, installed globally into a
// prefix of its own with no network and no repository, then run from there.
const ROOT = join(import.meta.dirname, '../..');
const run = promisify(execFile);
let dir: string;
let kumoBin: string;
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-install-'));
  await chmod(dir, 0o755); // as root, Kumo's unprivileged service user must reach the data dirs in it
  // The bundle is built by the test run's global setup (packages/cli/build.mjs), as `npm ci` builds it.
  await run('npm', ['pack', '-w', '@kumo/cli', '--pack-destination', dir], { cwd: ROOT });
  const tarball = (await readdir(dir)).find((f) => f.endsWith('.tgz'));
  expect(tarball).toMatch(/^kumo-cli-\d+\.\d+\.\d+\.tgz$/);
  const prefix = join(dir, 'prefix');
  await run(
    'npm',
    ['install', '--global', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', join(dir, tarball!)],
    { cwd: dir },
  );
  kumoBin = join(prefix, 'bin', 'kumo');
  env = { PATH: process.env.PATH!, HOME: join(dir, 'home'), KUMO_CONFIG: join(dir, 'home', 'config.json') };
}, 180_000);
afterAll(async () => {
  if (dir) killProcessesUnder(dir);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the packed and installed kumo', () => {
  it('answers kumo version and kumo up --help from the install prefix', async () => {
    const version = await run(kumoBin, ['version'], { env, cwd: dir });
    expect(version.stdout).toMatch(/^Client: \d+\.\d+\.\d+\nServer: not logged in/);
    const help = await run(kumoBin, ['up', '--help'], { env, cwd: dir });
    expect(help.stdout).toMatch(/^Usage: kumo up \[options\]/);
    expect(help.stdout).toContain('--data-dir <dir>');
  });

  it('runs Kumo from the install: store migrations, a real PostgreSQL and MariaDB through the ACL proxy', async () => {
    const data = join(dir, 'data');
    const up = await startKumoChild(['--data-dir', data, '--port', '0'], { bin: kumoBin, env });
    try {
      const kumo = (args: string[]) => run(kumoBin, args, { env, cwd: dir });
      await kumo(['login', '--url', up.url, '--token', up.token, '--default-project', 'shop']);
      await kumo(['org', 'create', 'acme', '--wait']);
      await kumo(['project', 'create', 'shop', '--org', 'acme', '--wait']);
      // MariaDB listens behind the ACL proxy, a script the package carries next to the bundle.
      for (const engine of ['postgres', 'mariadb']) {
        const created = await kumo([
          'db',
          'create',
          engine,
          '--engine',
          engine,
          '--acl',
          '127.0.0.1/32',
          '--wait',
        ]);
        expect(created.stdout).toBe(`db/${engine} created\n`);
      }
      const query = await kumo(['db', 'connect', 'mariadb', '--', '-N', '-e', 'select 40 + 2']);
      expect(query.stdout.trim()).toBe('42');
    } finally {
      up.child.kill('SIGTERM');
      await up.exited;
    }
  });

  it('refuses a store a newer Kumo migrated, with a message saying so and no stack trace', async () => {
    const url = await createTestDatabase(inject('pg'));
    const store = new pg.Pool({ connectionString: url });
    try {
      await store.query('CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz)');
      await store.query(
        "INSERT INTO schema_migrations VALUES ('001_foundation.sql', now()), ('999_later.sql', now())",
      );
    } finally {
      await store.end();
    }
    const refused = await run(kumoBin, ['up', '--data-dir', join(dir, 'newer'), '--port', '0'], {
      env: { ...env, KUMO_DATABASE_URL: url },
      cwd: dir,
    }).catch((err: { code: number; stdout: string; stderr: string }) => err);
    expect(refused).toMatchObject({ code: 2 }); // kumo up's exit code for a setup it cannot run
    const output = (refused as { stderr: string }).stderr;
    expect(output).toContain(
      'This store was migrated by a newer Kumo (migration 999_later.sql is unknown to Kumo ',
    );
    expect(output).not.toMatch(/\n\s+at /);
  });
});
