import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { EngineModule, InstalledVersion } from '../engine.js';
import { MARIADB_COLLATIONS, MARIADB_PARAMETERS, MARIADB_PLANS } from './catalog.js';
import { MariadbLocal } from './local.js';

/** MariaDB: one server per database, reached through Kumo's source-address proxy. */
export const mariadbEngine: EngineModule = {
  name: 'mariadb',
  title: 'MariaDB',
  description: 'MariaDB relational database, compatible with MySQL clients',
  plans: MARIADB_PLANS,
  parameters: MARIADB_PARAMETERS,
  capabilities: {
    backup: true,
    factsFromSnapshot: true,
    users: true,
    durability:
      'every committed transaction in InnoDB tables, the default engine (redo log flushed at commit); MyISAM tables are not crash-safe',
  },
  client: {
    program: 'mariadb',
    args: ['-h', '{host}', '-P', '{port}', '-u', '{username}', '-D', '{database}'],
    passwordEnv: 'MYSQL_PWD',
    package: 'mariadb-client',
  },
  planLimits(plan, parameters) {
    // Also the checks between parameters that a pattern cannot make (the catalog asks only here).
    const problems: Record<string, string> = {};
    const pool = parameters.innodb_buffer_pool_size;
    if (typeof pool === 'number' && pool > plan.memoryMB)
      problems.innodb_buffer_pool_size = `must be at most the plan's memory (${plan.memoryMB} MB on plan ${plan.name}); choose a larger plan or a smaller value`;
    const { character_set_server: charset, collation_server: collation } = parameters;
    if (typeof charset === 'string' && typeof collation === 'string') {
      if (!MARIADB_COLLATIONS[charset]?.includes(collation))
        problems.collation_server = `is not a collation of character set ${charset}; choose one of ${MARIADB_COLLATIONS[charset]?.join(', ')}`;
    }
    const zone = parameters.time_zone;
    if (typeof zone === 'string' && /^[A-Za-z]/.test(zone) && !isTimeZoneName(zone))
      problems.time_zone =
        'is not a time zone name MariaDB knows; use SYSTEM, an offset such as +02:00, or a name such as Europe/Paris';
    return problems;
  },
  discover: ({ path }) => findMariadb([...path.split(delimiter), '/usr/sbin']),
  local: new MariadbLocal(),
  backup: {
    extension: 'sql',
    describeFacts: (facts) => `${facts.tables.length} table(s), row counts and checksums match`,
  },
  connectionUri: ({ host, port, username, password, database }) =>
    `mysql://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`,
};

/** SYSTEM and offsets aside: the IANA names (the server's time zone tables are loaded from the host's tzdata). */
function isTimeZoneName(zone: string): boolean {
  return zone === 'SYSTEM' || zone === 'UTC' || Intl.supportedValuesOf('timeZone').includes(zone);
}

/** Each version once (the first mariadbd found for it), newest first; location is the mariadbd binary. */
function findMariadb(dirs: string[]): InstalledVersion[] {
  const found = new Map<string, InstalledVersion>();
  for (const dir of dirs.filter(Boolean)) {
    const binary = join(dir, 'mariadbd');
    if (!existsSync(binary)) continue;
    try {
      const out = execFileSync(binary, ['--version'], { stdio: 'pipe' }).toString();
      const match = /Ver (\d+\.\d+)\./.exec(out);
      if (match && !found.has(match[1]!)) found.set(match[1]!, { version: match[1]!, location: binary });
    } catch {
      // unusable: skipped
    }
  }
  return [...found.values()].sort((a, b) => b.version.localeCompare(a.version, 'en', { numeric: true }));
}
