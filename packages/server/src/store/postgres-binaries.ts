import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { delimiter, dirname, join } from 'node:path';
import { SetupError } from '../errors.js';

/** A directory of PostgreSQL server binaries (initdb, pg_ctl, postgres) and their major version. */
export interface PostgresBinaries {
  binDir: string;
  majorVersion: number;
}

export interface FindBinariesOptions {
  /** KUMO_PG_BIN: a directory with initdb and pg_ctl. When set, it is the only place looked at. */
  pgBin?: string;
  /** The PATH to search. Default: none. */
  path?: string;
  /** Where distributions install versioned server binaries. Default: /usr/lib/postgresql. */
  versionedRoot?: string;
}

const REQUIRED = ['initdb', 'pg_ctl', 'postgres'];

/**
 * Finds PostgreSQL server binaries: pgBin if given, else the first PATH entry that has them,
 * else the newest /usr/lib/postgresql/N/bin. Throws SetupError with install instructions if none.
 */
export function findPostgresBinaries(options: FindBinariesOptions): PostgresBinaries {
  const found = listPostgresBinaries(options)[0];
  if (found) return found;
  const looked = options.pgBin ? `KUMO_PG_BIN=${options.pgBin}` : 'PATH and /usr/lib/postgresql/*/bin';
  throw new SetupError(
    `No PostgreSQL server binaries (initdb, pg_ctl, postgres) found in ${looked}. ` +
      'Install them (Debian/Ubuntu: apt-get install postgresql) or set KUMO_PG_BIN to the directory that holds them, ' +
      'or point Kumo at an existing server with KUMO_DATABASE_URL.',
  );
}

/** Every usable PostgreSQL installation, in search order, one per major version. Never throws. */
export function listPostgresBinaries(options: FindBinariesOptions): PostgresBinaries[] {
  const candidates: string[] = [];
  if (options.pgBin) candidates.push(options.pgBin);
  else {
    for (const entry of (options.path ?? '').split(delimiter).filter(Boolean)) {
      const initdb = join(entry, 'initdb');
      // Debian links initdb into /usr/local/bin or /usr/bin; the real directory holds the rest.
      if (existsSync(initdb)) candidates.push(dirname(realpathSync(initdb)));
    }
    const root = options.versionedRoot ?? '/usr/lib/postgresql';
    if (existsSync(root)) {
      const versions = readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a));
      for (const version of versions) candidates.push(join(root, version, 'bin'));
    }
  }
  const found = new Map<number, PostgresBinaries>();
  for (const binDir of new Set(candidates)) {
    if (!REQUIRED.every((name) => existsSync(join(binDir, name)))) continue;
    try {
      const majorVersion = readMajorVersion(binDir);
      if (!found.has(majorVersion)) found.set(majorVersion, { binDir, majorVersion });
    } catch {
      // an unusable installation is skipped
    }
  }
  return [...found.values()];
}

function readMajorVersion(binDir: string): number {
  const out = execFileSync(join(binDir, 'postgres'), ['--version'], { stdio: 'pipe' }).toString();
  const match = /(\d+)(?:\.\d+)?/.exec(out);
  if (!match) throw new SetupError(`Cannot read the PostgreSQL version from "${out.trim()}" (${binDir}).`);
  return Number(match[1]);
}
