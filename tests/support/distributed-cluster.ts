import { type ChildProcess, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../../packages/server/src/testing/wait.js';
import { type Lab, type LabExecResult, canRunLab, createLab } from './netns-lab.js';

/**
 * Kumo in distributed mode on a netns lab (tests/support/netns-lab.ts), as an operator would run it
 * on several machines: host `core` runs the shared store (a PostgreSQL of the cluster's own,
 * reached over the lab's network with a password), NATS JetStream and two `kumo server` replicas;
 * the test starts `kumo agent`s on the other hosts; host `client` is where users are: every API
 * request and database connection of the test starts there. The test process itself cannot reach
 * the lab's addresses (it is in the root namespace), so nothing is checked from a privileged view
 * a user would not have, except the host's own processes and files (pids, data directories).
 */

const execFileP = promisify(execFile);
const KUMO = join(import.meta.dirname, '../../packages/cli/bin/kumo.js');
const PG_BIN = '/usr/lib/postgresql/15/bin';
const NATS_SERVER = '/usr/sbin/nats-server';
/** The store's PostgreSQL runs as nobody: PostgreSQL refuses to run as root. */
const NOBODY = 65534;
const STORE_PORT = 5432;
const NATS_PORT = 4222;
/** The two API replicas' ports on core. */
const API_PORTS = [7070, 7071] as const;
/** Per `kumo` process start (tsx compiles the sources on a loaded machine). */
const START_MS = 90_000;

/** A Kumo program (`kumo server`, `kumo agent`) running in a lab host. */
export interface KumoProcess {
  /** For messages: "server :7070", "agent b on client". */
  name: string;
  host: string;
  pid: number;
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Resolves with its exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals | null>;
  running(): boolean;
  /** SIGKILL (kill -9), resolved once it has ended. Idempotent. */
  kill(): Promise<void>;
  /** SIGTERM (a clean stop), resolved once it has ended; SIGKILL after 30 s. Idempotent. */
  stop(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  /** The parsed JSON body; the text when it is not JSON; null when empty. */
  body: any;
  text: string;
}

/** How to reach a managed database: as GET …/credentials answers. */
export interface DatabaseCredentials {
  host: string;
  port: number;
  username: string;
  password: string;
  database: string;
}

export interface AgentOptions {
  host: string;
  target: string;
  token: string;
  /** Default: `<cluster dir>/agent-<host>-<target>`, the same on every start (the same installation). */
  dataDir?: string;
  /** Default 25000-25019 (ports are per host: every host has its own network stack). */
  dbPorts?: string;
}

export interface Cluster {
  lab: Lab;
  /** Holds every data directory of the cluster. */
  dir: string;
  /** The replicas' API URLs, as agents and clients are given them. */
  apiUrls: string[];
  natsUrl: string;
  /** The admin token, from the first replica's data directory. */
  token: string;
  /** The API replicas, in the order of apiUrls. */
  servers: KumoProcess[];
  /**
   * One request from the client host to one replica with the admin token, body as JSON (a merge
   * patch for PATCH); rejects when the replica does not answer (refused, reset, timed out).
   */
  request(
    url: string,
    method: string,
    path: string,
    body?: unknown,
    timeoutMs?: number,
  ): Promise<ApiResponse>;
  /**
   * One request as a client that knows every replica: to the one that answered last, then to the
   * others while one does not answer or answers 503. Rejects when none answers.
   */
  api(method: string, path: string, body?: unknown): Promise<ApiResponse>;
  /** Why api() tried another replica: one entry per request a replica did not answer (or 503). */
  failovers: string[];
  /** Runs `kumo ARGS` (the CLI) on the client host, logged in with the admin token. */
  cli(args: string[]): Promise<LabExecResult>;
  /** Runs SQL with psql on the client host; the result as psql ends (code 0: it connected and ran). */
  psql(credentials: DatabaseCredentials, sql: string): Promise<LabExecResult>;
  /** Starts `kumo agent` and resolves once it says it is running (it may be waiting for the lease). */
  startAgent(options: AgentOptions): Promise<KumoProcess>;
  /** The default data directory of an agent: see AgentOptions.dataDir. */
  agentDataDir(host: string, target: string): string;
  /** Stops NATS (SIGTERM); its JetStream store stays. */
  stopNats(): Promise<void>;
  /** Starts NATS again on the same address and store; resolves once it is ready. */
  startNats(): Promise<void>;
  /** Stops everything the cluster and its tests started, removes the lab and the data. Idempotent. */
  close(): Promise<void>;
}

/** Whether this machine can run a cluster (a lab, nats-server, PostgreSQL 15), and if not, why. */
export function canRunCluster(): { ok: true } | { ok: false; reason: string } {
  const lab = canRunLab();
  if (!lab.ok) return lab;
  if (!existsSync(NATS_SERVER)) return { ok: false, reason: `${NATS_SERVER} is not installed (nats-server)` };
  if (!existsSync(join(PG_BIN, 'postgres')))
    return { ok: false, reason: `PostgreSQL 15 is not installed in ${PG_BIN} (postgresql-15)` };
  return { ok: true };
}

/**
 * Builds the lab (hosts `core`, `client` and `agentHosts`) and starts the store, NATS and the two
 * API replicas on core, and the client's request process. Rejects, having removed all it built,
 * when something does not start.
 */
export async function startCluster(agentHosts: string[]): Promise<Cluster> {
  const lab = await createLab(['core', ...agentHosts, 'client']);
  const dir = await mkdtemp(join(tmpdir(), 'kumo-dist-'));
  // The service user `kumo` that agents run managed servers as must traverse to their data.
  await chmod(dir, 0o711);
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      await lab.close();
      await rm(dir, { recursive: true, force: true });
    })());
  try {
    const core = lab.hosts.core!.address;
    const storeUrl = await startStore(lab, dir);
    const natsArgs = ['-a', core, '-p', String(NATS_PORT), '-js', '-sd', join(dir, 'nats')];
    let nats: ChildProcess | undefined;
    const startNats = async () => {
      const child = lab.spawn('core', NATS_SERVER, natsArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
      nats = child;
      await printed(child, 'stderr', /Server is ready/, 'nats-server', 30_000);
    };
    await startNats();
    const natsUrl = `nats://${core}:${NATS_PORT}`;
    const apiUrls = API_PORTS.map((port) => `http://${core}:${port}`);
    const env = {
      ...kumoFreeEnv(),
      KUMO_DATABASE_URL: storeUrl,
      KUMO_MASTER_KEY: randomBytes(32).toString('base64'),
      KUMO_NATS_URL: natsUrl,
      KUMO_AGENT_LEASE_SECONDS: '4',
    };
    // One after the other: the first creates the schema and the admin token.
    const servers: KumoProcess[] = [];
    for (const port of API_PORTS) {
      const server = await startKumo(
        lab,
        'core',
        `server :${port}`,
        ['server', '--host', core, '--port', String(port), '--data-dir', join(dir, `server-${port}`)],
        env,
        'kumo server is running.',
      );
      servers.push(server);
    }
    const token = (await readFile(join(dir, `server-${API_PORTS[0]}`, 'admin-token'), 'utf8')).trim();
    const client = startRequester(lab);

    const request: Cluster['request'] = async (url, method, path, body, timeoutMs = 20_000) => {
      const answer = await client.send({
        url: url + path,
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined
            ? {}
            : { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        timeoutMs,
      });
      if (answer.error !== undefined) throw new Error(`${method} ${url}${path}: ${answer.error}`);
      const text = answer.text ?? '';
      let parsed: unknown = null;
      if (text) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
      }
      return { status: answer.status!, body: parsed, text };
    };
    let preferred = 0;
    const failovers: string[] = [];
    const api: Cluster['api'] = async (method, path, body) => {
      const failures: string[] = [];
      for (let i = 0; i < apiUrls.length; i++) {
        const index = (preferred + i) % apiUrls.length;
        try {
          const res = await request(apiUrls[index]!, method, path, body);
          if (res.status === 503) {
            failures.push(`${apiUrls[index]}: 503 ${res.text}`);
            continue;
          }
          preferred = index;
          failovers.push(...failures);
          return res;
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      throw new Error(`no API replica answered: ${failures.join('; ')}`);
    };
    const agentDataDir = (host: string, target: string) => join(dir, `agent-${host}-${target}`);

    return {
      lab,
      dir,
      apiUrls,
      natsUrl,
      token,
      servers,
      request,
      api,
      failovers,
      cli: (args) =>
        lab.exec('client', process.execPath, [KUMO, ...args], {
          env: { ...kumoFreeEnv(), KUMO_URL: apiUrls[preferred]!, KUMO_TOKEN: token, HOME: dir },
          timeoutMs: 60_000,
        }),
      psql: (c, sql) =>
        lab.exec('client', join(PG_BIN, 'psql'), ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            PGHOST: c.host,
            PGPORT: String(c.port),
            PGUSER: c.username,
            PGPASSWORD: c.password,
            PGDATABASE: c.database,
            PGCONNECT_TIMEOUT: '5',
            PGSSLMODE: 'disable',
          },
          timeoutMs: 20_000,
        }),
      agentDataDir,
      async startAgent(options) {
        const address = lab.hosts[options.host]!.address;
        const dataDir = options.dataDir ?? agentDataDir(options.host, options.target);
        return startKumo(
          lab,
          options.host,
          `agent ${options.target} on ${options.host}`,
          [
            'agent',
            '--target',
            options.target,
            '--api',
            apiUrls.join(','),
            '--nats-url',
            natsUrl,
            '--db-listen-host',
            '0.0.0.0',
            '--db-advertise-host',
            address,
            '--gateway-listen',
            `${address}:7071`,
            '--data-dir',
            dataDir,
            '--db-ports',
            options.dbPorts ?? '25000-25019',
          ],
          { ...kumoFreeEnv(), KUMO_AGENT_TOKEN: options.token, KUMO_AGENT_LEASE_SECONDS: '4' },
          'kumo agent is running.',
        );
      },
      async stopNats() {
        const running = nats;
        nats = undefined;
        if (running) await terminate(running, 'SIGTERM');
      },
      startNats,
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/**
 * The shared store: initdb as nobody, then postgres in core's namespace on core's address with
 * password (SCRAM) authentication for the lab's subnet; its Unix socket (trust, for the test
 * only) creates the `kumo` database. Resolves with the URL the replicas are given.
 */
async function startStore(lab: Lab, dir: string): Promise<string> {
  const root = join(dir, 'store');
  const data = join(root, 'data');
  await mkdir(root, { mode: 0o700 });
  await chown(root, NOBODY, NOBODY);
  const password = randomBytes(18).toString('base64url');
  const pwfile = join(root, 'pwfile');
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  await chown(pwfile, NOBODY, NOBODY);
  const asNobody = { uid: NOBODY, gid: NOBODY, cwd: root, env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } };
  await execFileP(
    join(PG_BIN, 'initdb'),
    ['-D', data, '-U', 'kumo', '--pwfile', pwfile, '-A', 'scram-sha-256', '-E', 'UTF8', '--locale', 'C'],
    asNobody,
  );
  await rm(pwfile);
  await writeFile(
    join(data, 'pg_hba.conf'),
    `local all all trust\nhost all all ${lab.subnet} scram-sha-256\n`,
  );
  const postgres = lab.spawn(
    'core',
    join(PG_BIN, 'postgres'),
    [
      '-D',
      data,
      '-c',
      `listen_addresses=${lab.hosts.core!.address}`,
      '-c',
      `port=${STORE_PORT}`,
      '-c',
      `unix_socket_directories=${root}`,
      '-c',
      'max_connections=200',
    ],
    { uid: NOBODY, gid: NOBODY, cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await printed(postgres, 'stderr', /ready to accept connections/, 'the store PostgreSQL', 60_000);
  await execFileP(join(PG_BIN, 'psql'), [
    '-X',
    '-h',
    root,
    '-p',
    String(STORE_PORT),
    '-U',
    'kumo',
    '-d',
    'postgres',
    '-c',
    'CREATE DATABASE kumo',
  ]);
  return `postgresql://kumo:${password}@${lab.hosts.core!.address}:${STORE_PORT}/kumo`;
}

/** Starts `kumo ARGS` in host and resolves once it printed ready; rejects with its output otherwise. */
async function startKumo(
  lab: Lab,
  host: string,
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: string,
): Promise<KumoProcess> {
  const child = lab.spawn(host, process.execPath, [KUMO, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let all = '';
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    all += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => (all += d.toString()));
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  const kumo: KumoProcess = {
    name,
    host,
    pid: child.pid!,
    child,
    output: () => all,
    exited,
    running,
    kill: () => terminate(child, 'SIGKILL'),
    stop: () => terminate(child, 'SIGTERM'),
  };
  const started = await Promise.race([
    waitFor(async () => (stdout.includes(ready) ? true : undefined), `${name} to start`, START_MS),
    exited,
  ]).catch((err: Error) => err);
  if (started !== true) {
    await kumo.kill();
    throw new Error(
      `${name} did not start (${started instanceof Error ? started.message : started}):\n${all}`,
    );
  }
  return kumo;
}

/** Sends signal and resolves once child has ended; SIGKILL after 30 s. Idempotent. */
async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** Resolves once child printed a line matching pattern on stream; rejects when it ends first or at timeout. */
function printed(
  child: ChildProcess,
  stream: 'stdout' | 'stderr',
  pattern: RegExp,
  what: string,
  timeoutMs: number,
): Promise<void> {
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${text}`)),
      timeoutMs,
    );
    child[stream]!.on('data', (d: Buffer) => {
      text = (text + d.toString()).slice(-20_000);
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} ended (${code ?? signal}):\n${text}`));
    });
  });
}

/** The test's environment without KUMO_* settings, which would change what the programs do. */
function kumoFreeEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KUMO_')));
}

interface RequesterAnswer {
  id: number;
  status?: number;
  text?: string;
  error?: string;
}

/**
 * One long-lived node process on the client host that makes the HTTP requests it is sent on its
 * stdin (a JSON line each) and writes each answer as a JSON line: requests come from the client's
 * address, without starting a process per request.
 */
const REQUESTER = `
const rl = require('node:readline').createInterface({ input: process.stdin });
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
rl.on('line', async (line) => {
  const r = JSON.parse(line);
  try {
    const res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body, signal: AbortSignal.timeout(r.timeoutMs) });
    out({ id: r.id, status: res.status, text: await res.text() });
  } catch (e) {
    out({ id: r.id, error: String(e && e.cause ? (e.cause.code || e.cause.message) : e && e.message) });
  }
});
rl.on('close', () => process.exit(0));`;

function startRequester(lab: Lab): {
  send(request: {
    url: string;
    method: string;
    headers: Record<string, string>;
    body?: string;
    timeoutMs: number;
  }): Promise<RequesterAnswer>;
} {
  const child = lab.spawn('client', process.execPath, ['-e', REQUESTER], { stdio: ['pipe', 'pipe', 'pipe'] });
  const pending = new Map<number, (answer: RequesterAnswer) => void>();
  let nextId = 1;
  let buffered = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const answer = JSON.parse(buffered.slice(0, newline)) as RequesterAnswer;
      buffered = buffered.slice(newline + 1);
      pending.get(answer.id)?.(answer);
      pending.delete(answer.id);
    }
  });
  child.once('exit', (code, signal) => {
    for (const [id, resolve] of pending)
      resolve({ id, error: `the client's requester ended (${code ?? signal}): ${stderr}` });
    pending.clear();
  });
  child.stdin!.on('error', () => undefined);
  return {
    send(request) {
      if (child.exitCode !== null || child.signalCode !== null)
        return Promise.resolve({ id: 0, error: `the client's requester has ended: ${stderr}` });
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        child.stdin!.write(`${JSON.stringify({ id, ...request })}\n`);
      });
    },
  };
}
