import { execFileSync } from 'node:child_process';
import { SetupError } from '../errors.js';

/** The unprivileged account that runs PostgreSQL and managed services when Kumo itself runs as root. */
export interface ServiceUser {
  name: string;
  uid: number;
  gid: number;
}

/**
 * Returns the account managed processes must run as: undefined when Kumo is not root (they run as
 * Kumo's own user), otherwise the system user `name`, created with useradd if missing. Idempotent.
 * Throws SetupError when the user cannot be created.
 */
export function ensureServiceUser(name: string): ServiceUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let found = lookup(name);
  if (!found) {
    try {
      execFileSync(
        'useradd',
        [
          '--system',
          '--user-group',
          '--no-create-home',
          '--home-dir',
          '/nonexistent',
          '--shell',
          '/usr/sbin/nologin',
          name,
        ],
        { stdio: 'pipe' },
      );
    } catch (err) {
      // Another Kumo process may have created it at the same moment.
      if (!lookup(name)) {
        throw new SetupError(
          `Kumo runs as root and needs an unprivileged system user "${name}" to run PostgreSQL, but useradd failed: ${stderrOf(err)}. Create the user yourself (useradd --system ${name}) or run Kumo as a normal user.`,
          { cause: err },
        );
      }
    }
    found = lookup(name);
  }
  if (!found) throw new SetupError(`The system user "${name}" could not be found after creating it.`);
  return found;
}

function lookup(name: string): ServiceUser | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { stdio: 'pipe' }).toString().trim());
    const gid = Number(execFileSync('id', ['-g', name], { stdio: 'pipe' }).toString().trim());
    return { name, uid, gid };
  } catch {
    return undefined;
  }
}

export function stderrOf(err: unknown): string {
  const stderr = (err as { stderr?: Buffer | string }).stderr;
  const text = stderr ? stderr.toString().trim() : '';
  return text || (err instanceof Error ? err.message : String(err));
}
