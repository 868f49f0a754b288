import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const KUMO = join(import.meta.dirname, '../../packages/cli/bin/kumo.js');

/** `kumo up` running as a child process, as a user runs it. */
export interface KumoChild {
  child: ChildProcess;
  url: string;
  token: string;
  /** Resolves when the process has ended: its exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** Everything it wrote so far, stdout and stderr interleaved. */
  output: () => string;
}

/**
 * Starts `kumo up` with args (options.bin: the `kumo` command to run) and resolves once it says it is up (it listens by then). Rejects with
 * its output when it exits first or is not up within timeoutMs (then it is killed).
 */
export async function startKumoChild(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; bin?: string } = {},
): Promise<KumoChild> {
  // The repository's command by default; `bin` runs another `kumo` (an installed one) instead.
  const command = options.bin ? [options.bin, 'up', ...args] : [process.execPath, KUMO, 'up', ...args];
  const child = spawn(command[0]!, command.slice(1), {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let all = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    all += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => (all += d.toString()));
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise<void>((resolve) =>
        child.stdout!.on('data', () => stdout.includes('Press Ctrl-C') && resolve()),
      ),
      exited.then((code) => Promise.reject(new Error(`kumo up exited with ${code}:\n${all}`))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`kumo up was not up within ${timeoutMs} ms:\n${all}`));
        }, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  const url = /API: +(\S+)/.exec(stdout)?.[1];
  // The secret is printed when it is created; later starts name the file that holds it.
  const tokenFile = /Token file: +(\S+)/.exec(stdout)?.[1];
  const token =
    /Admin token: +(\S+)/.exec(stdout)?.[1] ??
    (tokenFile ? (await readFile(tokenFile, 'utf8').catch(() => '')).trim() : undefined);
  if (!url || !token) {
    child.kill('SIGKILL');
    throw new Error(`kumo up did not print its URL and admin token:\n${all}`);
  }
  return {
    child,
    url,
    token,
    exited,
    output: () => all,
  };
}

/** A process whose command line names a path under some directory. */
export interface HostProcess {
  pid: number;
  args: string;
}

/** Every process whose command line contains dir (its servers, their tools, and Kumo itself). */
export function processesUnder(dir: string): HostProcess[] {
  const listing = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return listing
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[2]!.includes(dir))
    .map((m) => ({ pid: Number(m[1]), args: m[2]! }))
    .filter((p) => p.pid !== process.pid);
}

/**
 * SIGKILLs every process whose command line names dir: what a test started there (Kumo, its
 * embedded store, managed servers, ACL proxies, dump tools) must not outlive it. Processes that
 * name no path, such as PostgreSQL's backends, end with their postmaster.
 */
export function killProcessesUnder(dir: string): void {
  for (const { pid } of processesUnder(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
