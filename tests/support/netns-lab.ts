import { type ChildProcess, type SpawnOptions, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { promisify } from 'node:util';
import { waitFor } from '../../packages/server/src/testing/wait.js';

/**
 * A lab of several "hosts" on one machine, for end-to-end tests of what spans hosts (an agent
 * per host, partitions between them). Each host is a Linux network namespace with its own
 * loopback and one address on a subnet that exists only inside the lab: the hosts are joined by
 * veth pairs to a bridge in the lab's own "switch" namespace, and no namespace of the lab has a
 * default route, so nothing a test starts in a host reaches the root namespace or the outside.
 *
 * Namespaces are named `<prefix><pid>-<4 hex>` (the switch) and `<prefix><pid>-<4 hex>-<host>`
 * (the hosts): the pid of the process that created them lets a later run remove what a killed
 * run left behind (sweepStaleLabs). Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN), `ip` and
 * `setpriv`; see canRunLab.
 */

const execFileP = promisify(execFile);

export interface LabHost {
  /** As given to createLab. */
  name: string;
  /** Its network namespace, as `ip netns list` shows it. */
  ns: string;
  /** Its address on the lab's subnet: the n-th host given to createLab has .(10 + n), e.g. 10.77.42.11. */
  address: string;
}

/** Options of spawn: child_process.spawn's, with uid and gid taken to mean the command's user. */
export interface LabSpawnOptions extends SpawnOptions {
  /** Runs the command as this uid (with no supplementary groups). Default: root, as the lab runs. */
  uid?: number;
  /** Runs the command as this gid. Default: uid when one is given, else root's group. */
  gid?: number;
}

export interface LabExecOptions {
  /** As for spawn. */
  uid?: number;
  gid?: number;
  /** The command's whole environment. Default: the test process's. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to its stdin, which is then closed. Default: an empty stdin. */
  input?: string;
  /** Then it is killed and exec rejects with what it printed. Default 30,000 ms. */
  timeoutMs?: number;
}

export interface LabExecResult {
  /** Its exit code, or 128 + the signal's number when a signal ended it (as a shell reports it). */
  code: number;
  stdout: string;
  stderr: string;
}

export interface Lab {
  /** The switch's namespace and the prefix of every host's: `kumo-<pid>-<4 hex>`. */
  id: string;
  /** The hosts' subnet, e.g. 10.77.42.0/24; it exists in no namespace outside the lab. */
  subnet: string;
  hosts: Record<string, LabHost>;
  /**
   * Starts command inside host's namespace (`ip netns exec`, which execs it: the child's pid is
   * the command's own once it runs). The lab SIGKILLs it on close. Throws once the lab is closed.
   */
  spawn(host: string, command: string, args: string[], options?: LabSpawnOptions): ChildProcess;
  /** Runs command inside host's namespace to its end. Rejects only when it cannot start or times out. */
  exec(host: string, command: string, args: string[], options?: LabExecOptions): Promise<LabExecResult>;
  /**
   * Takes host's switch port down: it can reach no other host and none can reach it, while its
   * own interface and address stay, as when a cable is pulled. Idempotent.
   */
  cut(host: string): Promise<void>;
  /** Brings host's switch port back up; reachable again at once. Idempotent. */
  restore(host: string): Promise<void>;
  /**
   * SIGKILLs what spawn and exec started and every other process in the lab's namespaces, waits
   * until they are gone, then deletes the namespaces (their links go with them). Idempotent, and
   * safe whatever state a failed test left the lab in; after a rejection it may be called again.
   */
  close(): Promise<void>;
}

/** Whether this process can build a lab, and if not, why (for a test's skip reason). */
export function canRunLab(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'network namespaces need Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'creating network namespaces needs root' };
  for (const [tool, arg] of [
    ['ip', '-V'],
    ['setpriv', '--version'],
  ] as const) {
    try {
      execFileSync(tool, [arg], { stdio: 'ignore' });
    } catch {
      return { ok: false, reason: `\`${tool}\` is not installed (iproute2 / util-linux)` };
    }
  }
  return { ok: true };
}

/**
 * Builds a lab with one host per name (names: lower-case letters, digits and dashes, unique),
 * after sweeping labs a killed run left behind. Rejects when it cannot, having removed what it
 * had built.
 */
export async function createLab(hostNames: string[], options: { prefix?: string } = {}): Promise<Lab> {
  const prefix = options.prefix ?? 'kumo-';
  const can = canRunLab();
  if (!can.ok) throw new Error(`cannot create a netns lab: ${can.reason}`);
  if (hostNames.length === 0 || hostNames.length > 200) throw new Error('a lab has 1 to 200 hosts');
  for (const name of hostNames)
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`bad host name ${JSON.stringify(name)}`);
  if (new Set(hostNames).size !== hostNames.length) throw new Error('host names must be unique');
  await sweepStaleLabs(prefix);

  const random = randomBytes(2);
  const id = `${prefix}${process.pid}-${random.toString('hex')}`;
  // Labs share nothing, so equal subnets could not collide; differing ones only keep logs apart.
  const subnetBase = `10.77.${(random.readUInt16BE() % 254) + 1}`;
  const hosts: Record<string, LabHost> = {};
  const ports = new Map<string, string>();
  hostNames.forEach((name, i) => {
    hosts[name] = { name, ns: `${id}-${name}`, address: `${subnetBase}.${11 + i}` };
    ports.set(name, `port${i}`);
  });
  const created: string[] = [];
  const children = new Set<ChildProcess>();
  let closed = false;
  let closing: Promise<void> | undefined;

  const hostOf = (name: string): LabHost => {
    const host = hosts[name];
    if (!host) throw new Error(`no host ${JSON.stringify(name)} in lab ${id}`);
    return host;
  };

  const lab: Lab = {
    id,
    subnet: `${subnetBase}.0/24`,
    hosts,
    spawn(host, command, args, spawnOptions = {}) {
      if (closed) throw new Error(`lab ${id} is closed`);
      const { uid, gid, ...rest } = spawnOptions;
      // spawn's own uid would apply to `ip`, which could then not enter the namespace; setpriv
      // switches inside it and execs, so the pid stays the command's. It needs no passwd entry.
      const asUser =
        uid === undefined && gid === undefined
          ? []
          : ['setpriv', `--reuid=${uid ?? 0}`, `--regid=${gid ?? uid ?? 0}`, '--clear-groups', '--'];
      const child = spawn('ip', ['netns', 'exec', hostOf(host).ns, ...asUser, command, ...args], rest);
      children.add(child);
      child.once('exit', () => children.delete(child));
      child.once('error', () => children.delete(child));
      return child;
    },
    exec(host, command, args, execOptions = {}) {
      const { input, timeoutMs = 30_000, ...rest } = execOptions;
      const child = lab.spawn(host, command, args, { ...rest, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin!.on('error', () => {}); // it may end without reading its input
      child.stdin!.end(input ?? '');
      return new Promise<LabExecResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`${command} in ${host} did not end within ${timeoutMs} ms:\n${stdout}${stderr}`));
        }, timeoutMs);
        child.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        // 'close', not 'exit': by then its output has been read to the end.
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code: code ?? 128 + (signal ? constants.signals[signal] : 0), stdout, stderr });
        });
      });
    },
    cut: (host) => ip(['-n', id, 'link', 'set', ports.get(hostOf(host).name)!, 'down']),
    restore: (host) => ip(['-n', id, 'link', 'set', ports.get(hostOf(host).name)!, 'up']),
    close() {
      closed = true;
      closing ??= (async () => {
        for (const child of children) child.kill('SIGKILL');
        await Promise.all([...children].map(exited));
        await removeNamespaces(created);
        created.length = 0;
      })().catch((err: unknown) => {
        closing = undefined;
        throw err;
      });
      return closing;
    },
  };

  try {
    await ip(['netns', 'add', id]);
    created.push(id);
    await ip(['-n', id, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', id, 'link', 'set', 'br0', 'up']);
    for (const host of Object.values(hosts)) {
      const port = ports.get(host.name)!;
      await ip(['netns', 'add', host.ns]);
      created.push(host.ns);
      // 127.0.0.1/8 on lo makes every 127.x.y.z local, as in the root namespace.
      await ip(['-n', host.ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', host.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', id]);
      await ip(['-n', id, 'link', 'set', port, 'master', 'br0', 'up']);
      await ip(['-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
      await ip(['-n', host.ns, 'link', 'set', 'eth0', 'up']);
    }
  } catch (err) {
    await lab.close().catch(() => {});
    throw err;
  }
  return lab;
}

/**
 * Removes the labs (namespaces named `<prefix><pid>-<4 hex>[-<host>]`) whose creating process no
 * longer exists, killing what still runs in them; resolves with the namespaces removed. Labs of
 * live processes are left alone, so concurrent runs are safe; a lab whose pid was reused by
 * another process stays until that one ends.
 */
export async function sweepStaleLabs(prefix = 'kumo-'): Promise<string[]> {
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\d+)-[0-9a-f]{4}(-|$)`);
  const stale = (await namespaces()).filter((ns) => {
    const pid = pattern.exec(ns)?.[1];
    return pid !== undefined && !isAlive(Number(pid));
  });
  await removeNamespaces(stale);
  return stale;
}

/** SIGKILLs every process in the namespaces until none is left, then deletes them. Idempotent. */
async function removeNamespaces(names: string[]): Promise<void> {
  await waitFor(
    async () => {
      let left = 0;
      for (const ns of names)
        for (const pid of await pidsIn(ns)) {
          left++;
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      return left === 0 ? true : undefined;
    },
    `the processes in ${names.join(', ')} to end`,
    10_000,
  );
  for (const ns of names) {
    // Another sweeper may have deleted it meanwhile: only one that is still there is an error.
    await ip(['netns', 'del', ns]).catch(async (err: unknown) => {
      if ((await namespaces()).includes(ns)) throw err;
    });
  }
}

/** The processes whose network namespace is ns; none when ns does not exist. Zombies are not listed. */
async function pidsIn(ns: string): Promise<number[]> {
  if (!(await namespaces()).includes(ns)) return [];
  const { stdout } = await execFileP('ip', ['netns', 'pids', ns]);
  return stdout.split('\n').filter(Boolean).map(Number);
}

/** The names of the namespaces in /run/netns. */
async function namespaces(): Promise<string[]> {
  const { stdout } = await execFileP('ip', ['netns', 'list']);
  // Lines are `name` or `name (id: 3)`.
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter(Boolean);
}

async function ip(args: string[]): Promise<void> {
  await execFileP('ip', args);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolves once child has ended (at once when it never started or has already ended). */
function exited(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}
