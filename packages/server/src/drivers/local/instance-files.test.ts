import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive, readPidFile } from './instance-files.js';

describe('pid files', () => {
  const dirs: string[] = [];
  const sleepers: Array<ReturnType<typeof spawn>> = [];
  afterAll(async () => {
    for (const sleeper of sleepers) sleeper.kill('SIGKILL');
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('names a process of the instance, and not another process that got the same pid since', async () => {
    const instance = await mkdtemp(join(tmpdir(), 'kumo-pid-'));
    dirs.push(instance);
    await mkdir(join(instance, 'run'));
    const ours = spawn('sleep', ['60'], { cwd: join(instance, 'run'), stdio: 'ignore' });
    // A process elsewhere with the pid the file names: the server stopped, left its pid file, and
    // the pid was reused. Not "running", and never to be signalled.
    const stranger = spawn('sleep', ['60'], { cwd: tmpdir(), stdio: 'ignore' });
    sleepers.push(ours, stranger);
    await new Promise((resolve) => setTimeout(resolve, 100)); // both have started
    const file = join(instance, 'run', 'server.pid');
    await writeFile(file, `${ours.pid}\n`);
    expect(await readPidFile(file)).toBe(ours.pid);
    await writeFile(file, `${stranger.pid}\n`);
    expect(isAlive(stranger.pid)).toBe(true);
    expect(await readPidFile(file)).toBeUndefined();
    expect(await readPidFile(join(instance, 'run', 'missing.pid'))).toBeUndefined();
  });
});
