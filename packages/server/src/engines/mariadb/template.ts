import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DriverError } from '../../drivers/driver.js';
import type { EngineContext } from '../../drivers/local/local-engine.js';
import { stderrOf } from '../../system/service-user.js';
import { ADMIN, passwordHash, tool } from './admin.js';

const ZONEINFO = '/usr/share/zoneinfo';

/**
 * A data directory each instance of a version starts as a copy of: system tables with one account,
 * kumo_admin@localhost (its password in admin-password beside it), and the time zone tables. No
 * root, no anonymous account, no account of the service user, no test database. Built once per
 * version, as the service user, into a temporary directory that is renamed when complete: a crash
 * part-way leaves no template, and the next call builds it again. Throws DriverError.
 */
export async function createTemplate(ctx: EngineContext): Promise<{ data: string; password: string }> {
  const { as, crash } = ctx;
  const dir = join(ctx.templatesRoot, `mariadb-${ctx.state.version}`);
  const data = join(dir, 'data');
  const passwordFile = join(dir, 'admin-password');
  const script = join(dir, 'install.sql');
  // What a build that a crash interrupted left (one Kumo per data directory: none is in flight).
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    if (entry.startsWith('data.building-')) await rm(join(dir, entry), { recursive: true, force: true });
  }
  await rm(script, { force: true });
  if (existsSync(join(data, 'mysql')) && existsSync(passwordFile)) {
    return { data, password: (await readFile(passwordFile, 'utf8')).trim() };
  }
  await as.ownedDir(ctx.templatesRoot, 0o711);
  await as.ownedDir(dir, 0o711);
  const password = randomBytes(24).toString('base64url');
  const building = join(dir, `data.building-${process.pid}`);
  // Only the password's hash is written: the plain password never leaves Kumo.
  const accounts = [
    'FLUSH PRIVILEGES;',
    "DELETE FROM mysql.global_priv WHERE User <> 'mariadb.sys';",
    "DELETE FROM mysql.db WHERE User <> 'mariadb.sys';",
    'DELETE FROM mysql.proxies_priv;',
    'FLUSH PRIVILEGES;',
    `CREATE USER '${ADMIN}'@'localhost' IDENTIFIED BY PASSWORD '${passwordHash(password)}';`,
    `GRANT ALL PRIVILEGES ON *.* TO '${ADMIN}'@'localhost' WITH GRANT OPTION;`,
  ];
  await as.ownedFile(script, [...accounts, await timeZoneTables(ctx)].join('\n'));
  try {
    await as.run(
      tool(ctx.location, 'mariadb-install-db'),
      [
        '--no-defaults',
        `--datadir=${building}`,
        '--auth-root-authentication-method=socket',
        '--skip-test-db',
        '--skip-name-resolve',
        `--extra-file=${script}`,
      ],
      { cwd: dir },
    );
  } catch (err) {
    throw new DriverError(
      'TemplateFailed',
      `mariadb-install-db for MariaDB ${ctx.state.version} failed: ${stderrOf(err)}`,
    );
  } finally {
    await rm(script, { force: true });
  }
  crash.reach('mariadb.template.initialised');
  await writeFile(passwordFile, password + '\n', { mode: 0o600 });
  crash.reach('mariadb.template.password-saved');
  await rm(data, { recursive: true, force: true });
  await rename(building, data);
  crash.reach('mariadb.template.ready');
  return { data, password };
}

/** The host's time zones as SQL for the server's tables ('' without tzdata: only offsets then work). */
async function timeZoneTables(ctx: EngineContext): Promise<string> {
  if (!existsSync(ZONEINFO)) return '';
  try {
    const { stdout } = await ctx.as.run(tool(ctx.location, 'mariadb-tzinfo-to-sql'), [ZONEINFO], {
      cwd: ctx.templatesRoot,
    });
    return stdout;
  } catch {
    return ''; // unusable tzdata: named time zones are refused by the server, offsets work
  }
}
