import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  chmod,
  chown,
  mkdir,
  open,
  readFile,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileDurably } from '../../system/durable-file.js';
import type { ServiceUser } from '../../system/service-user.js';
import { DriverError } from '../driver.js';

/** Where one instance lives: <root>/<uid>/{instance.json, data/, run/, log/}. */
export interface InstancePaths {
  root: string;
  state: string;
  data: string;
  run: string;
  log: string;
  logFile: string;
}

export function instancePaths(root: string, uid: string): InstancePaths {
  const dir = join(root, uid);
  return {
    root: dir,
    state: join(dir, 'instance.json'),
    data: join(dir, 'data'),
    run: join(dir, 'run'),
    log: join(dir, 'log'),
    logFile: join(dir, 'log', 'server.log'),
  };
}

/** The driver's own record of an instance on this host (root-only, mode 0600). */
export interface InstanceState {
  uid: string;
  engine: string;
  version: string;
  port: number;
  /** Engine-internal secrets (the PostgreSQL superuser password), never shown to users. */
  adminPassword: string;
  /**
   * A new admin password recorded before the server is told it: after a crash between the two,
   * one of the two passwords works, and the one that does is kept (PostgreSQL).
   */
  adminPasswordNext?: string;
  /**
   * Set once the engine's data directory is complete. Until then a provision that a crash
   * interrupted is done again from the start (states written before this field existed: complete
   * when their data directory exists).
   */
  provisioned?: boolean;
  /** Set when Kumo started the process, cleared when Kumo stopped it: a dead process while set is a crash. */
  expectRunning: boolean;
  applied: { restart?: string; reload?: string; acl?: string; credentials?: number };
  /**
   * Logins besides the owner's that an engine keeps in its configuration (Redis: each user's ACL
   * rule, with its password as a SHA-256 hash only), by user name.
   */
  logins?: Record<string, string>;
}

export async function readState(paths: InstancePaths): Promise<InstanceState | undefined> {
  try {
    const state = JSON.parse(await readFile(paths.state, 'utf8')) as InstanceState;
    state.provisioned ??= existsSync(paths.data);
    return state;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof SyntaxError)
      throw new DriverError('StateCorrupt', `${paths.state} is not valid JSON: ${err.message}`);
    throw new DriverError(
      'DataDirUnwritable',
      `Cannot read ${paths.state}: ${(err as Error).message}. Check the data directory's permissions and free space.`,
    );
  }
}

/** Atomic and durable: a crash (or a power loss) mid-write leaves the old state or the new, whole. */
export async function writeState(paths: InstancePaths, state: InstanceState): Promise<void> {
  await writeFileDurably(paths.state, JSON.stringify(state, null, 2));
}

/** Runs commands and owns files as the service user (or Kumo's own user when not root). */
export class AsUser {
  constructor(readonly user: ServiceUser | undefined) {}

  /**
   * Runs a command to completion in a new session, so that servers it starts survive Kumo and the
   * Ctrl-C of Kumo's terminal. Rejects with stdout/stderr attached on a non-zero exit or timeout.
   */
  run(
    binary: string,
    args: string[],
    options: { cwd: string; timeoutMs?: number; env?: Record<string, string> },
  ): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(binary, args, {
        cwd: options.cwd,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(this.user ? { uid: this.user.uid, gid: this.user.gid } : {}),
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', LC_ALL: 'C', ...options.env },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(Object.assign(err, { stdout, stderr }));
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve({ stdout, stderr });
        else reject(Object.assign(new Error(`${binary} exited with ${code ?? signal}`), { stdout, stderr }));
      });
    });
  }

  /**
   * Runs a command as the service user with its stdin and stdout as streams (a dump or a restore).
   * `exited` resolves on exit 0 and rejects with the end of stderr otherwise.
   */
  piped(
    binary: string,
    args: string[],
    options: { cwd: string; env?: Record<string, string>; stdin: 'pipe' | 'ignore'; stdout?: number },
  ): { child: ChildProcess; exited: Promise<void> } {
    const child = spawn(binary, args, {
      cwd: options.cwd,
      stdio: [options.stdin, options.stdout ?? 'pipe', 'pipe'],
      ...(this.user ? { uid: this.user.uid, gid: this.user.gid } : {}),
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', LC_ALL: 'C', ...options.env },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(Object.assign(new Error(`${binary} exited with ${code ?? signal}`), { stderr }));
      });
    });
    return { child, exited };
  }

  /**
   * Starts a long-running process detached from Kumo (new session, own stdout/stderr appended to
   * logFile), as the service user. Returns its pid; does not wait for it.
   */
  async spawnDetached(
    binary: string,
    args: string[],
    options: { cwd: string; logFile: string },
  ): Promise<number> {
    const log = await open(options.logFile, 'a', 0o600);
    try {
      if (this.user) await chown(options.logFile, this.user.uid, this.user.gid);
      const child = spawn(binary, args, {
        cwd: options.cwd,
        detached: true,
        stdio: ['ignore', log.fd, log.fd],
        ...(this.user ? { uid: this.user.uid, gid: this.user.gid } : {}),
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', LC_ALL: 'C' },
      });
      child.unref();
      return await new Promise((resolve, reject) => {
        child.once('error', reject);
        child.once('spawn', () => resolve(child.pid!));
      });
    } finally {
      await log.close();
    }
  }

  /** Gives an existing file to the service user. */
  async own(path: string): Promise<void> {
    if (this.user) await chown(path, this.user.uid, this.user.gid);
  }

  /** mkdir -p with mode, owned by the service user. */
  async ownedDir(dir: string, mode = 0o700): Promise<void> {
    await mkdir(dir, { recursive: true, mode });
    await chmod(dir, mode);
    if (this.user) await chown(dir, this.user.uid, this.user.gid);
  }

  /**
   * Writes a file owned by the service user, atomically (a reader never sees half of it), and only
   * when its content changes. Returns whether it changed.
   */
  async ownedFile(file: string, content: string, mode = 0o600): Promise<boolean> {
    const tmp = `${file}.kumo-tmp`;
    if ((await readFile(file, 'utf8').catch(() => undefined)) === content) {
      await rm(tmp, { force: true }); // what a write that a crash interrupted left
      return false;
    }
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode);
    if (this.user) await chown(tmp, this.user.uid, this.user.gid);
    await rename(tmp, file);
    return true;
  }
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid a pid file names, when that process is one of the instance's. A server stopped by a
 * signal may leave its pid file behind, and pids are reused (pid_max is often 32768): a process
 * that does not run in the instance's directory (the parent of the pid file's directory: data/ or
 * run/ are where its processes run) is someone else, and the file is stale (undefined) — never a
 * reason to think the server runs, nor to signal that process.
 */
export async function readPidFile(file: string): Promise<number | undefined> {
  if (!existsSync(file)) return undefined;
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).split('\n')[0]?.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  // Not readable (gone, another user's, no /proc): not judged here; isAlive says the rest.
  const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
  if (cwd === undefined) return pid;
  const instance = await realpath(dirname(dirname(file))).catch(() => dirname(dirname(file)));
  return cwd === instance || cwd.startsWith(`${instance}/`) ? pid : undefined;
}

/** The last n lines of a file ('' when it does not exist). */
export async function tailFile(file: string, n: number): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.slice(-n);
}

/**
 * Removes what steps a crash interrupted left under the instances and templates (half-built
 * templates, temporary state and configuration files). Never an instance's data. Resolves with how
 * many it removed.
 */
export async function sweepLeftovers(root: string, templatesRoot: string): Promise<number> {
  const leftovers: string[] = [];
  for (const entry of await readdir(templatesRoot).catch(() => [] as string[])) {
    const dir = join(templatesRoot, entry);
    for (const name of await readdir(dir).catch(() => [] as string[]))
      if (name.startsWith('data.building-') || name === 'initdb-pwfile') leftovers.push(join(dir, name));
  }
  for (const uid of await readdir(root).catch(() => [] as string[])) {
    const paths = instancePaths(root, uid);
    for (const dir of [paths.root, paths.data, paths.run]) {
      for (const name of await readdir(dir).catch(() => [] as string[]))
        if (name.endsWith('.kumo-tmp') || name === 'instance.json.tmp') leftovers.push(join(dir, name));
    }
  }
  for (const path of leftovers) await rm(path, { recursive: true, force: true });
  return leftovers.length;
}
