// What the distributed-mode benchmarks share: percentiles, bounded waits, checked API calls, a
// LIFO of clean-up steps, and CPU accounting from /proc (who was busy while a phase ran).
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The p-th percentile (nearest rank, as the other benchmarks compute it). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) throw new Error('percentile of nothing');
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Rejects with a message naming `what` when `promise` has not settled within `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every `everyMs` until it returns true; throws naming `what` after `ms`. */
export async function until(ms: number, what: string, check: () => boolean, everyMs = 20): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(everyMs);
  }
}

export function machine(): string {
  return `${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}`;
}

/**
 * Clean-up steps, run last-in first-out, each bounded so one that hangs cannot keep the others
 * (and the exit) waiting. A failing step is reported and the rest still run.
 */
export class Cleanup {
  private readonly steps: Array<{ what: string; step: () => Promise<unknown> }> = [];

  defer(what: string, step: () => Promise<unknown>): void {
    this.steps.push({ what, step });
  }

  async run(): Promise<void> {
    for (const { what, step } of this.steps.splice(0).reverse()) {
      await within(30_000, `clean-up: ${what}`, step()).catch((err: unknown) =>
        console.error(`clean-up step "${what}" failed: ${String(err)}`),
      );
    }
  }
}

/** A JSON API client with a bearer token: every answer but 2xx, and every timeout, throws. */
export function apiClient(base: string, token: string, timeoutMs = 15_000) {
  return async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(base + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (res.status < 200 || res.status >= 300)
      throw new Error(`${method} ${base}${path} answered ${res.status}: ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : undefined;
  };
}

/** Runs `task` for each item with at most `concurrency` in flight; rejects at the first failure. */
export async function eachLimited<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

interface ProcStat {
  ppid: number;
  /** utime + stime, in seconds. */
  own: number;
  /** cutime + cstime: children that have exited and been waited for, in seconds. */
  reaped: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name, which is in parentheses and may hold spaces.
    const f = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // USER_HZ is 100 on Linux.
    return { ppid: f[1]!, own: (f[11]! + f[12]!) / 100, reaped: (f[13]! + f[14]!) / 100 };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds a process and its children have used: its own, its exited children's, and its live
 * direct children's (a PostgreSQL server's backends). 0 once it is gone.
 */
function treeCpuSeconds(root: number): number {
  const self = readStat(root);
  if (!self) return 0;
  let total = self.own + self.reaped;
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === root) continue;
    const child = readStat(pid);
    if (child?.ppid === root) total += child.own;
  }
  return total;
}

/** Busy and total jiffies of the whole machine. */
function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

export interface CpuUse {
  /** Share of the whole machine's CPU time that was busy (0–1). */
  machine: number;
  /** Per labelled process tree: cores used on average (1 = one core all the time). */
  processes: Record<string, number>;
}

/**
 * Measures CPU use between start() and stop(): the machine's, and that of the processes named —
 * each a process tree (see treeCpuSeconds), or 'self': this process alone, without its children.
 */
export function cpuMeter(processes: Record<string, number | 'self'>) {
  const read = (pid: number | 'self') =>
    pid === 'self' ? (process.cpuUsage().user + process.cpuUsage().system) / 1e6 : treeCpuSeconds(pid);
  let started: { at: number; jiffies: { busy: number; total: number }; cpu: Record<string, number> };
  return {
    start() {
      const cpu: Record<string, number> = {};
      for (const [label, pid] of Object.entries(processes)) cpu[label] = read(pid);
      started = { at: performance.now(), jiffies: machineJiffies(), cpu };
    },
    stop(): CpuUse {
      const seconds = (performance.now() - started.at) / 1000;
      const jiffies = machineJiffies();
      const used: Record<string, number> = {};
      for (const [label, pid] of Object.entries(processes))
        used[label] = (read(pid) - started.cpu[label]!) / seconds;
      return {
        machine: (jiffies.busy - started.jiffies.busy) / Math.max(1, jiffies.total - started.jiffies.total),
        processes: used,
      };
    },
  };
}

/** The postmaster of a test PostgreSQL server, from its connection (its socket directory). */
export function postmasterPid(connection: { host: string }): number {
  const pid = Number(
    readFileSync(join(dirname(connection.host), 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0],
  );
  if (!(pid > 0)) throw new Error(`no postmaster.pid next to ${connection.host}`);
  return pid;
}

/** The one process whose command line (argv) satisfies `match`; throws when none or several do. */
export function findPid(what: string, match: (argv: string[]) => boolean): number {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      if (match(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'))) found.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  if (found.length !== 1) throw new Error(`expected one ${what} process, found ${found.length}`);
  return found[0]!;
}
