import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from './bench-kit.js';

export interface KumoServer {
  url: string;
  /** The admin token, printed by the replica that created it (the first on a store); else undefined. */
  token: string | undefined;
  child: ChildProcess;
  /** SIGINT, then SIGKILL if it has not exited within 20 s; removes its data directory. Idempotent. */
  stop: () => Promise<void>;
}

export interface KumoServerOptions {
  databaseUrl: string;
  /** base64 of 32 bytes, the same for every replica of one store. */
  masterKey: string;
  /** NATS JetStream; without: the in-process bus. */
  natsUrl?: string;
}

/**
 * One control-plane replica, `kumo server`, in its own process (as deployed), on port 0, logging
 * warnings to this process's stderr. Rate limit and default quotas are out of the way: the
 * benchmarks measure Kumo, not its limits. Rejects if it does not start within 60 s.
 */
export async function startKumoServer(options: KumoServerOptions): Promise<KumoServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'kumo-bench-server-'));
  const bin = join(import.meta.dirname, '../../packages/cli/bin/kumo.js');
  const child = spawn(
    process.execPath,
    [
      bin,
      'server',
      '--data-dir',
      dataDir,
      '--port',
      '0',
      '--database-url',
      options.databaseUrl,
      '--log-level',
      'warn',
      '--rate-limit',
      '1000000',
      '--default-quotas',
      'databases=1000000,storageGB=1000000000,backups=1000000',
      ...(options.natsUrl ? ['--nats-url', options.natsUrl] : []),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, KUMO_MASTER_KEY: options.masterKey } },
  );
  // A benchmark that dies without stop() must not leave the replica behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stopping = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => {
    process.off('exit', killOnExit);
    if (!stopping) console.error(`kumo server exited unexpectedly: code ${code}, signal ${signal}`);
  });
  let out = '';
  try {
    await within(
      60_000,
      'kumo server to start',
      new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (/Token file:/.test(out)) resolve();
        });
        child.once('exit', (code) => reject(new Error(`kumo server exited with ${code}: ${out}`)));
      }),
    );
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const url = /API: +(\S+)/.exec(out)?.[1];
  if (!url) throw new Error(`kumo server printed no API URL: ${out}`);
  return {
    url,
    token: /Admin token: +(\S+)/.exec(out)?.[1],
    child,
    stop: async () => {
      if (!stopping) {
        stopping = true;
        child.kill('SIGINT');
        await within(20_000, 'kumo server to stop', exited).catch(async (err: unknown) => {
          console.error(String(err));
          child.kill('SIGKILL');
          await exited;
        });
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
