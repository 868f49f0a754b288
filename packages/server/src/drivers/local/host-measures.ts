import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, statfs } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import type { Capacity } from '../driver.js';
import { instancePaths, readState } from './instance-files.js';

const run = promisify(execFile);

/** What this host offers: CPUs, memory, free disk under root, free ports of the range, instances. */
export async function hostCapacity(
  root: string,
  [low, high]: readonly [number, number],
  instances: number,
): Promise<Capacity> {
  const taken = [...(await takenPorts(root))].filter((p) => p >= low && p <= high).length;
  const disk = await statfs(root).catch(() => statfs(dirname(root)));
  return {
    cpus: availableParallelism(),
    memoryBytes: totalmem(),
    diskFreeBytes: Number(disk.bavail) * Number(disk.bsize),
    freePorts: high - low + 1 - taken,
    instances,
  };
}

/** The ports the instances under root were given. */
export async function takenPorts(root: string): Promise<Set<number>> {
  const ports = new Set<number>();
  for (const uid of await readdir(root).catch(() => [] as string[])) {
    const state = await readState(instancePaths(root, uid)).catch(() => undefined);
    if (state) ports.add(state.port);
  }
  return ports;
}

/** Allocated bytes (not apparent size): what the disk really holds; undefined when du could not tell. */
export async function storageBytes(data: string, searchPath: string): Promise<number | undefined> {
  if (!existsSync(data)) return 0;
  // du exits non-zero when a file vanishes under it (a server's temporary files come and go), and
  // still prints the total of what it saw: that total counts. Only no total at all is unknown.
  const du = run('du', ['-s', '--block-size=1', data], { env: { PATH: searchPath, LC_ALL: 'C' } });
  const stdout = await du.then(
    (done) => done.stdout,
    (err: { stdout?: string }) => err.stdout ?? '',
  );
  const bytes = Number.parseInt(stdout, 10);
  return Number.isNaN(bytes) ? undefined : bytes;
}
