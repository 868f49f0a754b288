import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { killManagedServers } from '../../packages/server/src/testing/test-kumo.js';
import {
  type CrashPlan,
  type Operation,
  type PlannedSpec,
  crashPlan,
  describeOperation,
  describePlan,
} from '../support/crash-plan.js';
import { type KumoChild, killProcessesUnder, processesUnder, startKumoChild } from '../support/kumo-child.js';
import { leftoversUnder, serversUnder } from '../support/host-inspection.js';
import { seedFrom } from '../support/seeded-random.js';
import { postgresDifferences, redisDifferences } from '../support/server-settings.js';

// kill -9 of the whole `kumo up` (embedded store, as users run it) at seeded moments of a seeded
// stream of API operations; after the last restart every acknowledged change is there and
// everything converges. Replay a failure with its seed: KUMO_CRASH_SEED=<seed> npx vitest run tests/e2e/random-crash.test.ts
const seed = seedFrom(process.env.KUMO_CRASH_SEED);
const REPLAY = `KUMO_CRASH_SEED=${seed} npx vitest run tests/e2e/random-crash.test.ts`;
/** Managed database ports: this test's own block (see packages/server/src/testing/test-kumo.ts). */
const DB_PORTS = '32650-32699';
const PROJECT = 'shop';
/** Generous for a slow shared machine: the test waits for conditions, it does not time them. */
const CONVERGE_MS = 150_000;
/** A request that hangs this long without a kill is a failure. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Where this seed's run stands: what a failure message needs, and what cleanup must stop. */
interface Run {
  dataDir: string;
  args: string[];
  kumo: KumoChild;
  /** Kumo processes this test killed on purpose. */
  killed: Set<KumoChild>;
  /** Set while a kill of this wave is still to come or under way. */
  killPending: boolean;
  /** Output of the incarnations before the current one. */
  earlier: string[];
  /** Operations whose answer a kill took away (sent again after the restart). */
  uncertain: string[];
  kills: string[];
  /** What went wrong outside a request, such as Kumo exiting by itself. */
  problems: string[];
}

let dir: string | undefined;
let run: Run | undefined;

afterAll(async () => {
  if (!dir) return;
  const dataDir = join(dir, 'data');
  run?.kumo.child.kill('SIGKILL');
  await killManagedServers(dataDir);
  killProcessesUnder(dataDir);
  await rm(dir, { recursive: true, force: true, maxRetries: 5 });
});

/** A failure message with everything needed to replay it. */
function failure(what: string): Error {
  return new Error(`[seed ${seed}] ${what}\nReplay: ${REPLAY}`);
}
const about = (what: string) => `[seed ${seed}] ${what} (replay: ${REPLAY})`;

/** The API could not be reached or did not answer: what a kill does to requests in flight. */
class Unreachable extends Error {}

interface Answer {
  status: number;
  body: any;
}

async function api(
  r: Run,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(r.kumo.url + path, {
      method,
      headers: {
        authorization: `Bearer ${r.kumo.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    text = await res.text();
  } catch (err) {
    throw new Unreachable(
      `${method} ${path}: ${(err as Error).message} (${String((err as Error).cause ?? '')})`,
    );
  }
  const json = (res.headers.get('content-type') ?? '').includes('json') && text !== '';
  return { status: res.status, body: json ? JSON.parse(text) : text };
}

const dbPath = (name: string) => `/v1/projects/${PROJECT}/databases/${name}`;

function specOf(db: any): PlannedSpec {
  const s = db.spec;
  return {
    engine: s.engine,
    version: s.version,
    plan: s.plan,
    storageGB: s.storageGB,
    parameters: s.parameters,
    acl: s.acl,
    stopped: s.stopped,
  };
}

/** Sends op once; resolves with the answer, throws Unreachable when a kill took it away. */
function send(r: Run, op: Operation, key: string): Promise<Answer> {
  switch (op.kind) {
    case 'create':
      return api(
        r,
        'POST',
        `/v1/projects/${PROJECT}/databases`,
        { metadata: { name: op.db }, spec: op.after },
        {
          'idempotency-key': key,
        },
      );
    case 'update':
      return api(
        r,
        'PATCH',
        dbPath(op.db),
        { spec: op.patch },
        { 'content-type': 'application/merge-patch+json' },
      );
    case 'delete':
      return api(r, 'DELETE', dbPath(op.db));
    case 'backup':
      return api(
        r,
        'POST',
        `/v1/projects/${PROJECT}/backups`,
        { metadata: { name: op.backup }, spec: { database: op.db } },
        { 'idempotency-key': key },
      );
    case 'rotate':
      return api(r, 'POST', `${dbPath(op.db)}/credentials/rotate`);
  }
}

const ACKNOWLEDGED: Record<Operation['kind'], number[]> = {
  create: [201],
  update: [200],
  delete: [200, 202],
  backup: [201],
  rotate: [200],
};

/**
 * After a kill took an answer away, the write happened completely or not at all: the database's
 * spec is the one before or the one after it.
 */
async function checkAllOrNothing(r: Run, op: Operation): Promise<void> {
  if (op.kind !== 'create' && op.kind !== 'update' && op.kind !== 'delete') return;
  const res = await api(r, 'GET', dbPath(op.db));
  const allowed =
    op.kind === 'create'
      ? [undefined, op.after]
      : op.kind === 'update'
        ? [op.before, op.after]
        : [op.before, undefined];
  const seen = res.status === 404 ? undefined : res.status === 200 ? specOf(res.body) : res.body;
  if (!allowed.some((spec) => isDeepStrictEqual(spec, seen)))
    throw failure(
      `after a kill took the answer to "${describeOperation(op)}" away, ${op.db} is half-written: ${res.status} ${JSON.stringify(seen)}; expected one of ${JSON.stringify(allowed)}`,
    );
}

/** Sends op until it is acknowledged, across kills and restarts. */
async function perform(r: Run, op: Operation, key: string): Promise<void> {
  let uncertain = false;
  for (;;) {
    const used = r.kumo;
    try {
      if (uncertain) await checkAllOrNothing(r, op);
      const res = await send(r, op, key);
      const ok =
        ACKNOWLEDGED[op.kind].includes(res.status) ||
        (uncertain && op.kind === 'delete' && res.status === 404);
      if (!ok)
        throw failure(`"${describeOperation(op)}" answered ${res.status}: ${JSON.stringify(res.body)}`);
      return;
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err;
      if (!uncertain) r.uncertain.push(`${describeOperation(op)} (${err.message})`);
      uncertain = true;
      await nextIncarnation(r, used, err);
    }
  }
}

/** Waits until Kumo was restarted after `used`; a request that failed without a kill is a failure. */
async function nextIncarnation(r: Run, used: KumoChild, err: Unreachable): Promise<void> {
  const since = Date.now();
  while (r.kumo === used) {
    if (!r.killPending && !r.killed.has(used))
      throw failure(
        `a request failed though Kumo was not killed: ${err.message}\n${tail(used.output(), 40)}`,
      );
    if (Date.now() - since > 90_000) throw failure(`Kumo was not restarted within 90 s after a kill`);
    await sleep(50);
  }
}

async function crash(r: Run, kill: { afterMs: number; downMs: number }, wave: number): Promise<void> {
  const old = r.kumo;
  r.killed.add(old);
  old.child.kill('SIGKILL');
  await old.exited;
  r.earlier.push(old.output());
  await sleep(kill.downMs);
  try {
    r.kumo = await startKumoChild(r.args);
  } catch (err) {
    const left = processesUnder(r.dataDir)
      .map((p) => `  ${p.pid} ${p.args}`)
      .join('\n');
    throw failure(
      `kumo up did not start again after kill -9 #${r.kills.length + 1} (wave ${wave}): ${(err as Error).message}\nProcesses left under the data dir:\n${left}`,
    );
  }
  r.kills.push(`wave ${wave}: ${kill.afterMs} ms after it was sent, down ${kill.downMs} ms`);
}

function watchForUnexpectedExit(r: Run, kumo: KumoChild): void {
  void kumo.exited.then((code) => {
    if (!r.killed.has(kumo) && run === r)
      r.problems.push(`kumo up exited by itself with ${code}:\n${tail(kumo.output(), 40)}`);
  });
}

function condition(resource: any, type: string): any {
  return (resource.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
}

function describeStatus(resource: any): string {
  const s = resource.status ?? {};
  const conditions = (s.conditions ?? [])
    .map((c: any) => `    ${c.type}=${c.status} ${c.reason}${c.message ? `: ${c.message}` : ''}`)
    .join('\n');
  return `phase ${s.phase}, generation ${resource.metadata?.generation}, observedGeneration ${s.observedGeneration}${s.credentialsVersion !== undefined ? `, credentialsVersion ${s.credentialsVersion}` : ''}${resource.metadata?.deletionTimestamp ? ', deleting' : ''}\n${conditions}`;
}

/** Something not converged yet: its API path, and what it is like now. */
interface Pending {
  path: string;
  what: string;
  /** A database with a server log to show. */
  database: boolean;
}

/** What has not converged yet; throws at once for what can never be right. */
async function unconverged(r: Run, plan: CrashPlan, live: Map<string, any>): Promise<Pending[]> {
  const pending: Pending[] = [];
  for (const [name, spec] of plan.live) {
    const res = await api(r, 'GET', dbPath(name));
    if (res.status !== 200)
      throw failure(`acknowledged database ${name} answers ${res.status}: ${JSON.stringify(res.body)}`);
    expect(specOf(res.body), about(`the spec of ${name} is the acknowledged one`)).toEqual(spec);
    live.set(name, res.body);
    const db = res.body;
    const current = db.status?.observedGeneration === db.metadata.generation;
    // A rotation changes no spec: its password works once status.credentialsVersion reaches it.
    const credentialsApplied = async () =>
      db.status.credentialsVersion === (await api(r, 'GET', `${dbPath(name)}/credentials`)).body?.version;
    const done = spec.stopped
      ? current && db.status.phase === 'Stopped'
      : current &&
        db.status.phase === 'Ready' &&
        condition(db, 'Ready')?.status === 'True' &&
        (await credentialsApplied());
    if (!done)
      pending.push({
        path: dbPath(name),
        what: `database ${name} (${spec.engine}${spec.stopped ? ', stopped' : ''}): ${describeStatus(db)}`,
        database: true,
      });
  }
  for (const name of plan.deleted) {
    const res = await api(r, 'GET', dbPath(name));
    if (res.status !== 404)
      pending.push({
        path: dbPath(name),
        what: `deleted database ${name} is still there: ${describeStatus(res.body)}`,
        database: true,
      });
  }
  for (const { name, db } of plan.backups) {
    const path = `/v1/projects/${PROJECT}/backups/${name}`;
    const res = await api(r, 'GET', path);
    if (res.status !== 200)
      throw failure(`acknowledged backup ${name} answers ${res.status}: ${JSON.stringify(res.body)}`);
    const phase = res.body.status?.phase;
    if (phase === 'Failed' && !condition(res.body, 'Succeeded')?.reason)
      throw failure(`backup ${name} failed without a reason: ${describeStatus(res.body)}`);
    if (phase !== 'Succeeded' && phase !== 'Failed')
      pending.push({ path, what: `backup ${name} of ${db}: ${describeStatus(res.body)}`, database: false });
  }
  return pending;
}

/** Waits until everything converged; on the deadline, fails with what is stuck and why. */
async function converge(r: Run, plan: CrashPlan): Promise<Map<string, any>> {
  const deadline = Date.now() + CONVERGE_MS;
  const live = new Map<string, any>();
  for (;;) {
    const pending = await unconverged(r, plan, live);
    if (pending.length === 0) return live;
    if (Date.now() > deadline) throw failure(await stuckReport(r, pending));
    await sleep(500);
  }
}

/** What is stuck, with its events and server log, Kumo's warnings and what runs on the host. */
async function stuckReport(r: Run, pending: Pending[]): Promise<string> {
  const details: string[] = [];
  for (const p of pending) {
    const events = (await api(r, 'GET', `${p.path}/events`)).body?.items ?? [];
    const log = p.database ? String((await api(r, 'GET', `${p.path}/logs?tail=15`)).body) : '';
    details.push(
      `${p.what}\n  events:\n${events
        .slice(-12)
        .map((e: any) => `    ${e.type} ${e.reason} ×${e.count}: ${e.message}`)
        .join('\n')}${p.database ? `\n  server log:\n${log}` : ''}`,
    );
  }
  const processes = processesUnder(r.dataDir)
    .map((p) => `  ${p.pid} ${p.args}`)
    .join('\n');
  return (
    `not converged within ${CONVERGE_MS / 1000} s after the last restart:\n${details.join('\n\n')}\n\n` +
    `Kumo's warnings and errors:\n${warnings(r)}\n\nProcesses under the data dir:\n${processes}`
  );
}

/** On disk: an instance directory per live database and no other; no temporary files left. */
async function checkDisk(r: Run, live: Map<string, any>): Promise<void> {
  const uids = [...live.values()].map((db) => db.metadata.uid as string);
  const instances = await readdir(join(r.dataDir, 'databases')).catch(() => [] as string[]);
  expect(instances.sort(), about('the instance directories are those of the live databases')).toEqual(
    uids.sort(),
  );
  const { leftovers, uploads } = await leftoversUnder(r.dataDir);
  if (uploads.length)
    console.log(`[seed ${seed}] interrupted backup uploads left (swept later): ${uploads.join(', ')}`);
  expect(leftovers, about('no temporary files or directories are left under the data dir')).toEqual([]);
}

/** Running: the embedded store, one server (and ACL proxy) per running database, nothing else. */
async function checkProcesses(r: Run, plan: CrashPlan, live: Map<string, any>): Promise<void> {
  const uids = new Map([...live].map(([name, db]) => [db.metadata.uid as string, name]));
  const { stores, servers, others } = serversUnder(r.dataDir, r.kumo.child.pid);
  expect(stores, about('one embedded store postmaster')).toBe(1);
  expect(others, about('no other process works under the data dir once everything converged')).toEqual([]);
  const wrong: string[] = [];
  for (const uid of new Set([...uids.keys(), ...servers.keys()])) {
    const name = uids.get(uid);
    const spec = name ? plan.live.get(name) : undefined;
    const wanted =
      !spec || spec.stopped ? [] : spec.engine === 'postgres' ? ['postgres'] : ['acl-proxy', 'redis-server'];
    const running = servers.get(uid) ?? [];
    if (isDeepStrictEqual(running, wanted)) continue;
    const db = name ? live.get(name) : undefined;
    const events = name ? ((await api(r, 'GET', `${dbPath(name)}/events`)).body?.items ?? []) : [];
    wrong.push(
      `${name ?? 'no database'} (${uid}${spec?.stopped ? ', stopped' : ''}): running [${running.join(', ')}], expected [${wanted.join(', ')}]` +
        (db ? `\n  ${describeStatus(db)}` : '') +
        events
          .slice(-12)
          .map((e: any) => `\n    ${e.type} ${e.reason} ×${e.count}: ${e.message}`)
          .join('') +
        `\n${await instanceLogs(r, uid)}`,
    );
  }
  if (wrong.length)
    throw failure(`not exactly one server (and ACL proxy) per running database:\n${wrong.join('\n')}`);

  const ports = [...live.values()].map((db) => db.status.endpoint?.port);
  expect(new Set(ports).size, about(`every database has its own port: ${ports.join(', ')}`)).toBe(
    ports.length,
  );
}

/**
 * Every running database accepts its current credentials, as a customer connects, and its server
 * really runs with the spec: what Ready and ConfigApplied claim.
 */
async function checkServers(r: Run, plan: CrashPlan): Promise<void> {
  for (const [name, spec] of plan.live) {
    if (spec.stopped) continue;
    const res = await api(r, 'GET', `${dbPath(name)}/credentials`);
    expect(res.status, about(`credentials of ${name}`)).toBe(200);
    const c = res.body;
    let differences: string[];
    try {
      differences =
        spec.engine === 'postgres' ? await postgresDifferences(c, spec) : await redisDifferences(c, spec);
    } catch (err) {
      const db = (await api(r, 'GET', dbPath(name))).body;
      await sleep(2000);
      const later = (await api(r, 'GET', `${dbPath(name)}/credentials`)).body;
      const again = await (spec.engine === 'postgres' ? postgresDifferences : redisDifferences)(
        later,
        spec,
      ).then(
        (d) => `accepted version ${later.version} 2 s later${d.length ? ` (${d.join('; ')})` : ''}`,
        (e: Error) => `refused version ${later.version} again 2 s later: ${e.message}`,
      );
      const serverSide = spec.engine === 'redis' ? await redisUserOnServer(r, db.metadata.uid, c) : '';
      throw failure(
        `${serverSide}${name} (${spec.engine}) refuses its credentials (version ${c.version}) from GET …/credentials (${c.host}:${c.port}): ${(err as Error).message}; ${again}\n` +
          `${describeStatus(db)}\n${await instanceLogs(r, db.metadata.uid)}\nKumo's warnings and errors:\n${warnings(r)}`,
      );
    }
    if (differences.length) {
      const db = (await api(r, 'GET', dbPath(name))).body;
      throw failure(
        `${name} (${spec.engine}) is Ready but its server does not run its spec: ${differences.join('; ')}\n${describeStatus(db)}`,
      );
    }
  }
}

/** What the Redis server itself holds for the database's user, asked as Kumo's admin over its socket. */
async function redisUserOnServer(r: Run, uid: string, c: any): Promise<string> {
  const root = join(r.dataDir, 'databases', uid);
  try {
    const state = JSON.parse(await readFile(join(root, 'instance.json'), 'utf8'));
    const admin = new Redis({
      path: join(root, 'run', 'redis.sock'),
      username: 'kumo_admin',
      password: state.adminPassword,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    admin.on('error', () => undefined);
    try {
      await admin.connect();
      const user = (await admin.call('ACL', 'GETUSER', c.username)) as unknown[];
      const hashes = user[user.indexOf('passwords') + 1] as string[];
      const wanted = createHash('sha256').update(c.password).digest('hex');
      return `the server's user ${c.username} has ${hashes.length} password(s), ${hashes.includes(wanted) ? 'including' : 'NOT including'} the one of version ${c.version}; instance.json applied ${JSON.stringify(state.applied)}\n`;
    } finally {
      admin.disconnect();
    }
  } catch (err) {
    return `(could not ask the server: ${(err as Error).message})\n`;
  }
}

/** The last lines of every log an instance writes (server, ACL proxy), for a failure message. */
async function instanceLogs(r: Run, uid: string): Promise<string> {
  const dir = join(r.dataDir, 'databases', uid, 'log');
  const files = await readdir(dir).catch(() => [] as string[]);
  const tails = await Promise.all(
    files.map(
      async (file) => `  ${file}:\n${tail(await readFile(join(dir, file), 'utf8').catch(() => ''), 15)}`,
    ),
  );
  return tails.join('\n');
}

function warnings(r: Run): string {
  const lines = [...r.earlier, r.kumo.output()].flatMap((out, i) =>
    out
      .split('\n')
      .filter((l) => /"level":(40|50|60)/.test(l))
      .map((l) => `[kumo #${i + 1}] ${l}`),
  );
  return lines.slice(-40).join('\n');
}

function tail(text: string, lines: number): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function crashTest(): Promise<void> {
  console.log(`random-crash: seed ${seed}; replay with ${REPLAY}`);
  const plan = crashPlan(seed);
  console.log(`random-crash: the plan of seed ${seed}:\n${describePlan(plan)}`);
  const started = Date.now();
  dir = await mkdtemp(join(tmpdir(), 'kumo-random-crash-'));
  await chmod(dir, 0o711);
  const dataDir = join(dir, 'data');
  const args = [
    '--data-dir',
    dataDir,
    '--port',
    '0',
    '--db-ports',
    DB_PORTS,
    '--rate-limit',
    '100000',
    '--default-quotas',
    'databases=100,storageGB=1000,backups=100',
  ];
  run = {
    dataDir,
    args,
    kumo: await startKumoChild(args),
    killed: new Set(),
    killPending: false,
    earlier: [],
    uncertain: [],
    kills: [],
    problems: [],
  };
  const r = run;
  watchForUnexpectedExit(r, r.kumo);
  for (const [path, body] of [
    ['/v1/orgs', { metadata: { name: 'acme' }, spec: {} }],
    ['/v1/projects', { metadata: { name: PROJECT }, spec: { org: 'acme' } }],
  ] as const) {
    const res = await api(r, 'POST', path, body);
    expect(res.status, about(`POST ${path}: ${JSON.stringify(res.body)}`)).toBe(201);
  }

  for (const [w, wave] of plan.waves.entries()) {
    await sleep(wave.pauseMs);
    r.killPending = wave.kill !== undefined;
    const sent = Promise.all(wave.ops.map((op, i) => perform(r, op, `crash-${seed}-${w}-${i}`)));
    sent.catch(() => undefined); // awaited below, after the kill
    if (wave.kill) {
      await sleep(wave.kill.afterMs);
      await crash(r, wave.kill, w);
      watchForUnexpectedExit(r, r.kumo);
      r.killPending = false;
    }
    await sent;
    if (r.problems.length) throw failure(r.problems.join('\n'));
  }
  const streamed = Date.now();
  console.log(
    `random-crash: seed ${seed}: ${plan.waves.flatMap((w) => w.ops).length} operations in ${plan.waves.length} waves, ` +
      `kills at ${r.kills.join('; ')}; answers lost to a kill and sent again: ${r.uncertain.length ? r.uncertain.join('; ') : 'none'}`,
  );

  await converge(r, plan).then(async (live) => {
    if (r.problems.length) throw failure(r.problems.join('\n'));
    await checkDisk(r, live);
    await checkProcesses(r, plan, live);
  });
  await checkServers(r, plan);
  const backups = await Promise.all(
    plan.backups.map(async ({ name }) => {
      const b = (await api(r, 'GET', `/v1/projects/${PROJECT}/backups/${name}`)).body;
      const failed = condition(b, 'Succeeded');
      return `${name} ${b.status.phase}${b.status.phase === 'Failed' ? ` (${failed.reason}: ${failed.message})` : ''}`;
    }),
  );
  console.log(
    `random-crash: seed ${seed} passed: stream ${((streamed - started) / 1000).toFixed(1)} s, converged ${((Date.now() - streamed) / 1000).toFixed(1)} s later; ` +
      `${plan.live.size} databases live, ${plan.deleted.length} deleted; backups: ${backups.join(', ') || 'none'}`,
  );
}

describe('kill -9 of kumo up at random moments', () => {
  it(
    `loses no acknowledged change and converges after the last restart (seed ${seed})`,
    { timeout: 270_000 },
    async () => {
      try {
        await crashTest();
      } catch (err) {
        // Kumo's whole output, every incarnation, is kept for whoever looks into the failure.
        const log = join(tmpdir(), `kumo-random-crash-${seed}.log`);
        if (run)
          await writeFile(
            log,
            [...run.earlier, run.kumo.output()].map((out, i) => `=== kumo up #${i + 1}\n${out}`).join('\n'),
          );
        console.log(`random-crash: seed ${seed} failed; Kumo's output is in ${log}`);
        // Every failure names the seed, whatever threw it, and what else went wrong.
        const also = run?.problems.length ? `\nMeanwhile: ${run.problems.join('\n')}` : '';
        if (err instanceof Error && !err.message.includes(`[seed ${seed}]`))
          throw failure(`${err.stack ?? err.message}${also}`);
        if (also) console.log(also);
        throw err;
      }
    },
  );
});
