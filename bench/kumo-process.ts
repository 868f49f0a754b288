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
  /** As request, but any answer other than 2xx throws, with the problem Kumo described. */
  ok: (path: string, init?: { method?: string; json?: unknown }) => Promise<any>;
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
    request: async (path, init = {}) => (await send(url, token, path, init)).json(),
    ok: async (path, init = {}) => {
      const res = await send(url, token, path, init);
      const body = await res.json().catch(() => undefined);
      if (!res.ok)
        throw new Error(`${init.method ?? 'GET'} ${path} answered ${res.status}: ${JSON.stringify(body)}`);
      return body;
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

function send(url: string, token: string, path: string, init: { method?: string; json?: unknown }) {
  return fetch(url + path, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
    signal: AbortSignal.timeout(30_000),
  });
}
