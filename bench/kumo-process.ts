import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killManagedServers } from '../packages/server/src/testing/test-kumo.js';

export interface KumoProcess {
  url: string;
  token: string;
  child: ChildProcess;
  request: (path: string, init?: { method?: string; json?: unknown }) => Promise<any>;
  stop: () => Promise<void>;
}

/** `kumo up` in its own process (as deployed), on an external store, on a free port. */
export async function startKumoProcess(databaseUrl: string, extraArgs: string[] = []): Promise<KumoProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'kumo-bench-'));
  const bin = join(import.meta.dirname, '../packages/cli/bin/kumo.js');
  const child = spawn(
    process.execPath,
    [
      bin,
      'up',
      '--data-dir',
      dataDir,
      '--port',
      '0',
      '--database-url',
      databaseUrl,
      '--log-level',
      'warn',
      '--rate-limit', // the benchmarks measure Kumo, not its rate limiter
      '1000000',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Press Ctrl-C')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`kumo up exited with ${code}: ${out}`)));
  });
  let stopping = false;
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`kumo up exited unexpectedly: code ${code}, signal ${signal}`);
  });
  const url = /API: +(\S+)/.exec(out)![1]!;
  const token = /Admin token: +(\S+)/.exec(out)![1]!;
  return {
    url,
    token,
    child,
    request: async (path, init = {}) => {
      const res = await fetch(url + path, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
      });
      return res.json();
    },
    stop: async () => {
      stopping = true;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
      await killManagedServers(dataDir);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
