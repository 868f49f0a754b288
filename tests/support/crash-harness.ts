import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFile, chmod, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { PostgresConnection } from '../../packages/server/src/store/embedded-postgres.js';
import { createTestDatabase } from '../../packages/server/src/testing/test-postgres.js';
import { killManagedServers } from '../../packages/server/src/testing/test-kumo.js';
import { waitFor } from '../../packages/server/src/testing/wait.js';
import { afterAll, expect, inject, it } from 'vitest';
import { CRASH_POINTS } from './crash-scenarios.js';

/**
 * The fault-injection harness (issue "safe to kill at any line"): a scenario is run once with its
 * crash points traced; then, for every point the operation reached, in turn, on a fresh store
 * and data directory, Kumo is started armed to die there (SIGKILL, as `kill -9` would), started
 * again unarmed, and the scenario's result is checked: converged to what was asked, nothing lost
 * or duplicated, no leftovers on disk, no server that should not run.
 */

const KUMO = join(import.meta.dirname, '../../packages/cli/bin/kumo.js');
/** What only an interrupted step leaves: temporary files, template builds, half uploads, restores. */
const LEFTOVER = /(\.tmp|\.kumo-tmp|\.restoring)$|data\.building-|\.partial-|initdb-pwfile/;

/** One Kumo process's API as a test client. */
export interface Api {
  url: string;
  /** A request with the admin token; resolves with status and parsed body (null when none). */
  call: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;
}

export interface Scenario {
  name: string;
  /** Whether it starts without the per-version templates (a create that builds them). Default false. */
  freshTemplates?: boolean;
  /** What the operation works on; its crash points are not targets (it runs in the armed Kumo). */
  setup: (api: Api) => Promise<void>;
  /** The operation under test: requests only, never waiting for their outcome. */
  act: (api: Api) => Promise<void>;
  /** More settings for Kumo in this workspace (e.g. an S3 store under the workspace's own prefix). */
  env?: (ws: WorkspaceInfo) => Record<string, string>;
  /** Waits until the operation's outcome is reached, checks it, and returns the uids that live. */
  converged: (api: Api, ws: WorkspaceInfo) => Promise<{ liveInstances: string[]; runningServers: number }>;
}

/** What a scenario may know of the workspace it runs in. */
export interface WorkspaceInfo {
  dataDir: string;
  /** Unique to this run of the scenario. */
  id: string;
}

export interface CrashTarget {
  point: string;
  /** The point's n-th arrival in the whole run (setup included), counted from 1. */
  hit: number;
}

interface Workspace extends WorkspaceInfo {
  databaseUrl: string;
  dbPorts: string;
  root: string;
  env: Scenario['env'];
}

/**
 * Points a timer reaches whatever the operation is (the agent's usage report, every minute): the
 * suite that lists them crashes at them; in the others they are only where a timer happened to
 * fire during the operation, and crashing there again would test nothing new.
 */
const TIMED: ReadonlySet<string> = new Set(CRASH_POINTS.metering);

/**
 * One test per scenario: traced once, then crashed at every point its operation reached, in
 * turn (but for TIMED ones outside their own suite). After them all, every point of `mustReach` was crashed at (a new step that changes
 * something outside the store cannot go untested). `KUMO_CRASH_ONLY=<point>#<hit>` runs one
 * point alone (with `-t '<scenario>'`).
 */
export function runCrashSuite(
  scenarios: Scenario[],
  mustReach: readonly string[],
  /** Managed database ports: the suite's own block (see packages/server/src/testing/test-kumo.ts). */
  dbPorts: string,
): void {
  const only = process.env.KUMO_CRASH_ONLY;
  const reached = new Set<string>();
  let scenariosRun = 0;
  for (const scenario of scenarios) {
    it(
      scenario.name,
      async () => {
        const targets = (await traceScenario(inject('pg'), scenario, dbPorts)).filter(
          (t) =>
            (!only || `${t.point}#${t.hit}` === only) && (!TIMED.has(t.point) || mustReach.includes(t.point)),
        );
        if (!only) expect(targets.length, 'crash points reached by the operation').toBeGreaterThan(0);
        const failures: string[] = [];
        for (const target of targets) {
          reached.add(target.point);
          await crashAndRecover(inject('pg'), scenario, target, dbPorts).catch((err: Error) =>
            failures.push(err.message),
          );
        }
        scenariosRun++;
        expect(failures).toEqual([]);
      },
      30 * 60_000,
    );
  }
  afterAll(() => {
    if (only || scenariosRun < scenarios.length) return; // a filtered run
    expect([...reached].sort()).toEqual(expect.arrayContaining([...mustReach]));
  });
}

/** Per-version templates built once by the first scenario that needs them, then copied in. */
let templates: string | undefined;

/** Runs the scenario with tracing on; returns the crash points its operation reached. */
export async function traceScenario(
  server: PostgresConnection,
  scenario: Scenario,
  dbPorts: string,
): Promise<CrashTarget[]> {
  const ws = await workspace(server, scenario, dbPorts);
  const trace = join(ws.root, 'trace');
  await appendFile(trace, '');
  try {
    const kumo = await startKumo(ws, { KUMO_TEST_CRASH_TRACE: trace });
    try {
      await scenario.setup(kumo.api);
      await appendFile(trace, '--- operation\n');
      await scenario.act(kumo.api);
      await scenario.converged(kumo.api, ws);
    } finally {
      await kumo.stop();
    }
    if (!templates) {
      // cp -a: owners and modes as Kumo made them (the service user must read and traverse them).
      const saved = join(await mkdtemp(join(tmpdir(), 'kumo-crash-templates-')), 'templates');
      execFileSync('cp', ['-a', join(ws.dataDir, 'templates'), saved]);
      templates = saved;
    }
    return targetsOf(await readFile(trace, 'utf8'));
  } finally {
    await dispose(ws);
  }
}

/** The points reached after the setup, each with its arrival number over the whole run. */
function targetsOf(trace: string): CrashTarget[] {
  const counts = new Map<string, number>();
  const targets: CrashTarget[] = [];
  let operation = false;
  for (const point of trace.split('\n').filter(Boolean)) {
    if (point === '--- operation') {
      operation = true;
      continue;
    }
    const hit = (counts.get(point) ?? 0) + 1;
    counts.set(point, hit);
    if (operation) targets.push({ point, hit });
  }
  return targets;
}

/**
 * Kills Kumo at target during the scenario, restarts it, and checks convergence and what is on
 * disk and running. Throws with what it found when anything is wrong.
 */
export async function crashAndRecover(
  server: PostgresConnection,
  scenario: Scenario,
  target: CrashTarget,
  dbPorts: string,
): Promise<void> {
  const ws = await workspace(server, scenario, dbPorts);
  try {
    const armed = await startKumo(ws, { KUMO_TEST_CRASH_AT: `${target.point}#${target.hit}` });
    try {
      await scenario.setup(armed.api);
      // A request in flight when Kumo dies fails: that is the crash being tested.
      await scenario.act(armed.api).catch(() => undefined);
      const died = await Promise.race([
        armed.exited,
        new Promise<'alive'>((r) => setTimeout(() => r('alive'), 90_000).unref()),
      ]);
      if (died !== 'SIGKILL')
        throw new Error(
          `Kumo did not die at ${target.point}#${target.hit} (${died}): the point was not reached again`,
        );
    } finally {
      await armed.stop();
    }
    const kumo = await startKumo(ws, {});
    try {
      const { liveInstances, runningServers } = await scenario.converged(kumo.api, ws);
      await expectNoLeftovers(ws.dataDir, liveInstances);
      const running = managedServers(ws.dataDir);
      if (running.length !== runningServers)
        throw new Error(
          `${running.length} managed servers run, not ${runningServers}:\n${running.join('\n')}`,
        );
    } finally {
      await kumo.stop();
    }
  } catch (err) {
    (err as Error).message = `after a crash at ${target.point}#${target.hit}: ${(err as Error).message}`;
    throw err;
  } finally {
    await dispose(ws);
  }
}

async function workspace(
  server: PostgresConnection,
  scenario: Scenario,
  dbPorts: string,
): Promise<Workspace> {
  const root = await mkdtemp(join(tmpdir(), 'kumo-crash-'));
  await chmod(root, 0o711);
  const dataDir = join(root, 'data');
  await mkdir(dataDir, { mode: 0o711 });
  if (templates && !scenario.freshTemplates)
    execFileSync('cp', ['-a', templates, join(dataDir, 'templates')]);
  return {
    root,
    dataDir,
    id: basename(root),
    databaseUrl: await createTestDatabase(server),
    dbPorts,
    env: scenario.env,
  };
}

async function dispose(ws: Workspace): Promise<void> {
  await killManagedServers(ws.dataDir);
  await rm(ws.root, { recursive: true, force: true });
}

interface KumoChild {
  api: Api;
  /** The exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** Stops it (Ctrl-C) if it still runs. */
  stop: () => Promise<void>;
}

/** `kumo up` on the workspace's external store, as a user runs it. */
async function startKumo(ws: Workspace, env: Record<string, string>): Promise<KumoChild> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      KUMO,
      'up',
      '--data-dir',
      ws.dataDir,
      '--port',
      '0',
      '--database-url',
      ws.databaseUrl,
      '--db-ports',
      ws.dbPorts,
      '--log-level',
      'warn',
      '--rate-limit',
      '1000000',
    ],
    { env: { ...process.env, ...ws.env?.(ws), ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const up = await Promise.race([
    waitFor(async () => (out.includes('Press Ctrl-C') ? true : undefined), 'kumo up', 60_000),
    exited,
  ]);
  if (up !== true) throw new Error(`kumo up ended (${up}) before it was up:\n${out}`);
  const url = /API: +(\S+)/.exec(out)![1]!;
  const token = (await readFile(join(ws.dataDir, 'admin-token'), 'utf8')).trim();
  return {
    api: {
      url,
      call: async (method, path, body) => {
        const res = await fetch(url + path, {
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : null };
      },
    },
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await exited;
      }
    },
  };
}

/** Fails naming what an interrupted step left behind, and instance directories nothing owns. */
async function expectNoLeftovers(dataDir: string, liveInstances: string[]): Promise<void> {
  const left: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (LEFTOVER.test(entry.name)) left.push(path);
      else if (entry.isDirectory()) await walk(path);
    }
  };
  await walk(dataDir);
  if (left.length) throw new Error(`leftovers on disk:\n${left.join('\n')}`);
  const instances = (await readdir(join(dataDir, 'databases')).catch(() => [] as string[])).sort();
  if (instances.join() !== [...liveInstances].sort().join())
    throw new Error(`instance directories ${instances.join(', ')}; expected ${liveInstances.join(', ')}`);
}

/** The postmasters, redis-servers and ACL proxies running for this data directory. */
function managedServers(dataDir: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps
    .split('\n')
    .filter((line) => line.includes(join(dataDir, 'databases')))
    .filter((line) => /bin\/postgres |redis-server|mariadbd |acl-proxy/.test(line));
}
