import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** The pid in a data directory's postmaster.pid (the server may be dead). */
export async function postmasterPidOf(pgdata: string): Promise<number> {
  const pid = Number((await readFile(join(pgdata, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  if (!(pid > 0)) throw new Error(`no pid in ${pgdata}/postmaster.pid`);
  return pid;
}

/** The live child processes of pid with their command lines (Linux /proc). */
export async function childrenOf(pid: number): Promise<Array<{ pid: number; cmdline: string }>> {
  const children: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(join('/proc', entry, 'stat'), 'utf8').catch(() => '');
    // "pid (comm) state ppid …": comm may hold spaces, so read after its closing parenthesis.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid !== pid) continue;
    const cmdline = await readFile(join('/proc', entry, 'cmdline'), 'utf8').catch(() => '');
    children.push({ pid: Number(entry), cmdline: cmdline.replaceAll('\0', ' ').trim() });
  }
  return children;
}

/** Whether pid names a process that has not exited (a zombie counts as exited). */
export async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
