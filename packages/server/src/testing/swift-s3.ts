import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { hostSearchPath } from './test-env.js';

const run = promisify(execFile);

/** A running S3-compatible server: OpenStack Swift with its s3api middleware, checking SigV4 signatures. */
export interface SwiftS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Creates a bucket. */
  createBucket(name: string): Promise<void>;
  /** Stops the proxy only: the store becomes unreachable (to test failures); start() brings it back. */
  stopProxy(): Promise<void>;
  startProxy(): Promise<void>;
  stop(): Promise<void>;
}

const SERVERS = ['account', 'container', 'object'] as const;

/**
 * Starts Debian's Swift (packages swift, swift-proxy, swift-account, swift-container, swift-object)
 * under a temporary directory: one device, one replica, each server on a free port, tempauth user
 * "test:tester" with key "testing" as the S3 access key and secret. Takes a few seconds.
 */
export async function startSwiftS3(): Promise<SwiftS3> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-swift-'));
  const device = join(dir, 'devices', 'd1');
  await mkdir(device, { recursive: true });
  const ports = {
    proxy: await freePort(),
    account: await freePort(),
    container: await freePort(),
    object: await freePort(),
  };
  const asRoot = userInfo().uid === 0;
  const user = asRoot ? 'swift' : userInfo().username;
  const common = `[DEFAULT]
bind_ip = 127.0.0.1
workers = 0
user = ${user}
swift_dir = ${dir}
devices = ${join(dir, 'devices')}
mount_check = false
log_udp_host = 127.0.0.1
log_udp_port = 9
log_level = WARNING
`;
  await writeFile(
    join(dir, 'swift.conf'),
    `[swift-hash]\nswift_hash_path_suffix = kumo-test\nswift_hash_path_prefix = kumo-test\n\n[storage-policy:0]\nname = gold\ndefault = yes\n`,
  );
  for (const server of SERVERS) {
    await writeFile(
      join(dir, `${server}-server.conf`),
      `${common}bind_port = ${ports[server]}

[pipeline:main]
pipeline = ${server}-server

[app:${server}-server]
use = egg:swift#${server}
`,
    );
    const builder = join(dir, `${server}.builder`);
    await run('swift-ring-builder', [builder, 'create', '6', '1', '1'], { env: env() });
    await run('swift-ring-builder', [builder, 'add', `r1z1-127.0.0.1:${ports[server]}/d1`, '100'], {
      env: env(),
    });
    await run('swift-ring-builder', [builder, 'rebalance'], { env: env() }).catch(
      (err: { code?: number }) => {
        if (err.code !== 1) throw err; // 1: a warning (one device), the ring is written
      },
    );
  }
  await writeFile(
    join(dir, 'proxy-server.conf'),
    `${common}bind_port = ${ports.proxy}

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${await freePort()}
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
`,
  );
  if (asRoot) await chownTree(dir, 'swift');

  const children = new Map<string, ChildProcess>();
  const start = (server: string) => {
    const child = spawn(`swift-${server}-server`, [join(dir, `${server}-server.conf`)], {
      env: env(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.once('exit', (code) => {
      if (children.get(server) === child && code !== null && code !== 0) {
        console.error(`swift-${server}-server exited with ${code}: ${stderr}`);
      }
    });
    children.set(server, child);
  };
  const stopOne = async (server: string) => {
    const child = children.get(server);
    children.delete(server);
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  const endpoint = `http://127.0.0.1:${ports.proxy}`;
  const healthy = async () => {
    for (let i = 0; i < 300; i++) {
      const ok = await fetch(`${endpoint}/healthcheck`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('Swift did not become healthy within 30 s');
  };
  for (const server of SERVERS) start(server);
  start('proxy');
  await healthy();

  const credentials = { accessKeyId: 'test:tester', secretAccessKey: 'testing' };
  return {
    endpoint,
    region: 'us-east-1',
    ...credentials,
    async createBucket(name) {
      const client = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials,
        requestChecksumCalculation: 'WHEN_REQUIRED',
      });
      // The account behind the bucket is created on first use; retry while the servers settle (on
      // a loaded machine Swift answers "503 reduce your request rate" for a while).
      const deadline = Date.now() + 90_000;
      for (;;) {
        try {
          await client.send(new CreateBucketCommand({ Bucket: name }));
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      client.destroy();
    },
    async stopProxy() {
      await stopOne('proxy');
    },
    async startProxy() {
      start('proxy');
      await healthy();
    },
    async stop() {
      for (const server of [...children.keys()]) await stopOne(server);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function env(): NodeJS.ProcessEnv {
  // Debian's Swift runs on Debian's python3, which must come first on PATH.
  return { PATH: `/usr/bin:/bin:${hostSearchPath()}`, HOME: tmpdir() };
}

async function chownTree(dir: string, user: string): Promise<void> {
  const { stdout } = await run('id', ['-u', user]);
  const { stdout: gid } = await run('id', ['-g', user]);
  await run('chown', ['-R', `${stdout.trim()}:${gid.trim()}`, dir]);
  await chown(dir, Number(stdout.trim()), Number(gid.trim()));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
