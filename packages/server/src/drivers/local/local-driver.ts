import { open, readdir, rm, stat } from 'node:fs/promises';
import type { EngineCatalog } from '../../engines/engine-catalog.js';
import { type CrashPoints, NO_CRASH_POINTS } from '../../faults/crash-points.js';
import type { Logger } from '../../logger.js';
import type { ServiceUser } from '../../system/service-user.js';
import {
  type ApplyOutcome,
  type Capacity,
  type DriverCapabilities,
  type BackupStream,
  type DatabaseLogin,
  type DataFacts,
  DriverError,
  type InstanceSpec,
  type Observation,
  type RuntimeDriver,
  nothingObserved,
} from '../driver.js';
import {
  AsUser,
  type InstancePaths,
  type InstanceState,
  instancePaths,
  isAlive,
  readState,
  sweepLeftovers,
  tailFile,
  writeState,
} from './instance-files.js';
import type { EngineContext, LocalEngine, LocalUsers } from './local-engine.js';
import { hostCapacity, storageBytes as measureStorage, takenPorts } from './host-measures.js';
import { InstanceLocks } from './instance-locks.js';
import { allocatePort } from './port-allocator.js';
import { requireEngine } from '../../engines/registry.js';

const WATCH_INTERVAL_MS = 500;

export interface LocalDriverOptions {
  /** Instances live in <root>/<uid>. */
  root: string;
  /** Per-version templates. */
  templatesRoot: string;
  catalog: EngineCatalog;
  user: ServiceUser | undefined;
  /** Address servers listen on; also what clients are told unless advertiseHost is set. */
  listenHost: string;
  advertiseHost: string;
  portRange: readonly [number, number];
  /** Where the system tools it runs (du) are found: the configuration's search path. */
  searchPath: string;
  logger: Logger;
  /** Test-only fault injection; default: none. */
  crashPoints?: CrashPoints;
}

/**
 * Runs databases as processes on this host, as the service user, detached from Kumo: a restart of
 * Kumo leaves them running and the next observe() adopts them. Ports stay with an instance for its
 * life. A watcher notices a dead process within a second.
 */
export class LocalDriver implements RuntimeDriver {
  readonly capabilities: DriverCapabilities = {
    supportsStop: true,
    supportsLogs: true,
    supportsReload: true,
    supportsBackup: true,
  };
  private readonly as: AsUser;
  private allocation: Promise<unknown> = Promise.resolve();
  private readonly exitListeners = new Set<(uid: string) => void>();
  private readonly reportedDead = new Set<string>();
  private readonly watcher: NodeJS.Timeout;
  private readonly crash: CrashPoints;
  /**
   * Apply, delete and restore wait for each other, and for a backup until its dump has ended (a
   * restart or a stop never cuts a dump off).
   */
  private readonly locks = new InstanceLocks();

  constructor(private readonly options: LocalDriverOptions) {
    this.as = new AsUser(options.user);
    this.crash = options.crashPoints ?? NO_CRASH_POINTS;
    this.watcher = setInterval(() => void this.watchProcesses(), WATCH_INTERVAL_MS);
    this.watcher.unref();
  }

  async observe(spec: InstanceSpec): Promise<Observation> {
    const paths = instancePaths(this.options.root, spec.uid);
    const state = await readState(paths);
    if (!state) return nothingObserved('not provisioned yet');
    const ctx = this.context(paths, state);
    const engine = this.engine(state.engine);
    const running = isAlive(await engine.pid(ctx));
    const probeError = running ? await engine.probe(ctx, spec) : 'the server is not running';
    const wanted = this.fingerprints(ctx, spec);
    const storageBytes = await measureStorage(paths.data, this.options.searchPath);
    return {
      exists: true,
      running,
      ready: running && probeError === undefined,
      configApplied:
        running && state.applied.restart === wanted.restart && state.applied.reload === wanted.reload,
      aclApplied: running && state.applied.acl === wanted.acl,
      credentialsApplied: state.applied.credentials === spec.credentials.version,
      ...(state.applied.credentials !== undefined ? { credentialsVersion: state.applied.credentials } : {}),
      crashed: state.expectRunning && !running,
      endpoint: { host: this.options.advertiseHost, port: state.port },
      ...(storageBytes !== undefined ? { usage: { storageBytes } } : {}),
      message: probeError ?? '',
    };
  }

  async apply(spec: InstanceSpec): Promise<ApplyOutcome> {
    const release = await this.locks.take(spec.uid);
    try {
      return await this.converge(spec);
    } finally {
      release();
    }
  }

  private async converge(spec: InstanceSpec): Promise<ApplyOutcome> {
    const actions: ApplyOutcome['actions'] = [];
    const paths = instancePaths(this.options.root, spec.uid);
    let state = await readState(paths);
    if (!state?.provisioned) {
      state = await this.provision(spec, paths, state);
      actions.push({
        reason: 'Created',
        message: `${spec.engine} ${spec.version} instance created on port ${state.port}`,
      });
    }
    const ctx = this.context(paths, state);
    const engine = this.engine(state.engine);
    const rendered = engine.renderConfig(ctx, spec);
    for (const file of rendered.files) {
      if (await this.as.ownedFile(file.path, file.content)) this.crash.reach('local.apply.config-written');
    }
    const wanted = rendered.fingerprints;
    const running = isAlive(await engine.pid(ctx));
    // Not running, yet some of its processes are (a kill between starting or stopping them).
    const partly = !running && (await engine.anyAlive(ctx));

    if (spec.stopped) {
      // The intent first: a crash between the two leaves a stop to finish, not a "crash" to report.
      if (state.expectRunning) {
        state.expectRunning = false;
        await writeState(paths, state);
        this.crash.reach('local.stop.intent-saved');
      }
      if (running || partly) {
        await engine.stop(ctx);
        this.crash.reach('local.stop.stopped');
        actions.push({ reason: 'Stopped', message: 'server stopped on request' });
      }
      return { actions };
    }

    if (!running) {
      // Whole or not at all: what still runs of it is stopped, then everything starts with this spec.
      if (partly) await engine.stop(ctx);
      const crashed = state.expectRunning;
      state.expectRunning = true;
      await writeState(paths, state);
      this.crash.reach('local.start.intent-saved');
      await this.start(engine, ctx, spec);
      this.crash.reach('local.start.started');
      actions.push(
        crashed
          ? { reason: 'Restarted', message: 'server restarted after it stopped unexpectedly' }
          : { reason: 'Started', message: 'server started' },
      );
    } else if (state.applied.restart !== wanted.restart) {
      await engine.stop(ctx);
      this.crash.reach('local.restart.stopped');
      await this.start(engine, ctx, spec);
      this.crash.reach('local.restart.started');
      actions.push({ reason: 'Restarted', message: 'server restarted to apply a configuration change' });
    } else if (state.applied.reload !== wanted.reload || state.applied.acl !== wanted.acl) {
      await engine.reload(ctx, spec);
      this.crash.reach('local.reload.reloaded');
      actions.push({ reason: 'Reloaded', message: 'configuration reloaded without a restart' });
    }
    // A (re)started server is watched afresh: its next death is news even if no watcher tick saw it alive.
    this.reportedDead.delete(spec.uid);
    if (
      state.applied.restart !== wanted.restart ||
      state.applied.reload !== wanted.reload ||
      state.applied.acl !== wanted.acl
    ) {
      state.applied = { ...state.applied, ...wanted };
      await writeState(paths, state);
      this.crash.reach('local.apply.applied-saved');
    }

    if (state.applied.credentials !== spec.credentials.version) {
      await engine.applyCredentials(ctx, spec);
      this.crash.reach('local.credentials.applied');
      state.applied.credentials = spec.credentials.version;
      await writeState(paths, state);
      this.crash.reach('local.credentials.saved');
      actions.push({
        reason: 'CredentialsApplied',
        message: `credentials version ${spec.credentials.version} applied`,
      });
    }
    return { actions };
  }

  /**
   * Starts the server; a start that fails is not a crash (nothing ran that could have stopped
   * unexpectedly), so it is no longer expected to run until the next start. Throws DriverError.
   */
  private async start(engine: LocalEngine, ctx: EngineContext, spec: InstanceSpec): Promise<void> {
    try {
      await engine.start(ctx, spec);
    } catch (err) {
      ctx.state.expectRunning = false;
      await ctx.saveState();
      throw err;
    }
  }

  async backup(spec: InstanceSpec, output?: number): Promise<BackupStream> {
    const release = await this.locks.take(spec.uid);
    try {
      const { ctx, engine } = await this.running(spec);
      const stream = await engine.backup(ctx, spec, output);
      stream.facts.then(release, release); // held until the dump has ended
      return stream;
    } catch (err) {
      release();
      throw err;
    }
  }

  async restore(
    spec: InstanceSpec,
    body: AsyncIterable<Uint8Array>,
    options: { replace: boolean },
  ): Promise<void> {
    const release = await this.locks.take(spec.uid);
    try {
      const { ctx, engine } = await this.running(spec);
      await engine.restore(ctx, spec, body, options.replace);
    } finally {
      release();
    }
  }

  async dataFacts(spec: InstanceSpec): Promise<DataFacts> {
    const { ctx, engine } = await this.running(spec);
    return engine.dataFacts(ctx, spec);
  }

  async applyUser(spec: InstanceSpec, login: DatabaseLogin): Promise<void> {
    const release = await this.locks.take(spec.uid);
    try {
      const { ctx, engine } = await this.running(spec);
      await this.usersOf(engine, spec).apply(ctx, spec, login);
    } finally {
      release();
    }
  }

  async probeUser(spec: InstanceSpec, login: DatabaseLogin): Promise<string | undefined> {
    const { ctx, engine } = await this.running(spec);
    return this.usersOf(engine, spec).probe(ctx, spec, login);
  }

  async dropUser(spec: InstanceSpec, username: string): Promise<void> {
    const release = await this.locks.take(spec.uid);
    try {
      // No instance, no login on it.
      if (!(await readState(instancePaths(this.options.root, spec.uid)))) return;
      const { ctx, engine } = await this.running(spec);
      await this.usersOf(engine, spec).drop(ctx, spec, username);
    } finally {
      release();
    }
  }

  private usersOf(engine: LocalEngine, spec: InstanceSpec): LocalUsers {
    if (!engine.users)
      throw new DriverError('UsersUnsupported', `${spec.engine} has no database users on this target.`, true);
    return engine.users;
  }

  /** The instance's context, when it exists and its server runs; else a DriverError saying which. */
  private async running(spec: InstanceSpec): Promise<{ ctx: EngineContext; engine: LocalEngine }> {
    const paths = instancePaths(this.options.root, spec.uid);
    const state = await readState(paths);
    if (!state)
      throw new DriverError(
        'NotProvisioned',
        `The ${spec.engine} instance of "${spec.name}" does not exist here.`,
      );
    const ctx = this.context(paths, state);
    const engine = this.engine(state.engine);
    if (!isAlive(await engine.pid(ctx))) {
      throw new DriverError('NotRunning', `The ${spec.engine} server of "${spec.name}" is not running.`);
    }
    return { ctx, engine };
  }

  async delete(uid: string): Promise<void> {
    const release = await this.locks.take(uid);
    try {
      await this.remove(uid);
    } finally {
      release();
    }
  }

  private async remove(uid: string): Promise<void> {
    const paths = instancePaths(this.options.root, uid);
    const state = await readState(paths);
    if (state) {
      const ctx = this.context(paths, state);
      const engine = this.engine(state.engine);
      state.expectRunning = false;
      await writeState(paths, state);
      this.crash.reach('local.delete.intent-saved');
      try {
        await engine.stop(ctx);
      } catch {
        const pid = await engine.pid(ctx);
        if (isAlive(pid)) process.kill(pid!, 'SIGKILL');
      }
      this.crash.reach('local.delete.stopped');
    }
    await rm(paths.root, { recursive: true, force: true });
    this.crash.reach('local.delete.removed');
    this.reportedDead.delete(uid);
  }

  sweep(): Promise<number> {
    return sweepLeftovers(this.options.root, this.options.templatesRoot);
  }

  busy(uid: string): boolean {
    return this.locks.held(uid);
  }

  async instances(): Promise<string[]> {
    return (await readdir(this.options.root).catch(() => [] as string[])).sort();
  }

  async logs(uid: string, tail: number): Promise<string[]> {
    return tailFile(instancePaths(this.options.root, uid).logFile, tail);
  }

  async followLogs(uid: string, onLine: (line: string) => void, signal: AbortSignal): Promise<void> {
    const file = instancePaths(this.options.root, uid).logFile;
    let offset = (await stat(file).catch(() => ({ size: 0 }))).size;
    let partial = '';
    while (!signal.aborted) {
      const size = (await stat(file).catch(() => ({ size: 0 }))).size;
      if (size < offset) offset = 0; // rotated or truncated
      if (size > offset) {
        const handle = await open(file, 'r');
        try {
          const buffer = Buffer.alloc(size - offset);
          await handle.read(buffer, 0, buffer.length, offset);
          offset = size;
          const lines = (partial + buffer.toString('utf8')).split('\n');
          partial = lines.pop() ?? '';
          for (const line of lines) onLine(line);
        } finally {
          await handle.close();
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  onProcessExit(listener: (uid: string) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.watcher);
    this.exitListeners.clear();
  }

  /**
   * Takes a port (once: a state already written keeps its port) and makes the data directory;
   * a provision that a crash interrupted is done again from the start. `provisioned` is saved last.
   */
  private async provision(
    spec: InstanceSpec,
    paths: InstancePaths,
    earlier: InstanceState | undefined,
  ): Promise<InstanceState> {
    this.engine(spec.engine); // refuses an engine this driver cannot run before taking a port
    const location = this.options.catalog.location(spec.engine, spec.version);
    if (!location)
      throw new DriverError(
        'EngineUnavailable',
        `${spec.engine} ${spec.version} is not installed on this host.`,
        true,
      );
    const state = earlier ?? (await this.allocate(spec, paths));
    for (const dir of [paths.run, paths.log]) await this.as.ownedDir(dir);
    await this.engine(spec.engine).provision(this.context(paths, state));
    state.provisioned = true;
    await writeState(paths, state);
    this.crash.reach('local.provision.saved');
    return state;
  }

  /** A port and the first state, under one lock, so two instances never share a port. */
  private async allocate(spec: InstanceSpec, paths: InstancePaths): Promise<InstanceState> {
    const allocated = this.allocation.then(async () => {
      await this.as.ownedDir(this.options.root, 0o711).catch((err) => {
        throw new DriverError(
          'DataDirUnwritable',
          `Cannot create the databases directory ${this.options.root}: ${(err as Error).message}. Check the data directory's permissions and free space.`,
        );
      });
      const port = await allocatePort(
        this.options.portRange,
        await takenPorts(this.options.root),
        this.options.listenHost,
      );
      await this.as.ownedDir(paths.root, 0o711).catch((err) => {
        throw new DriverError('DataDirUnwritable', `Cannot create ${paths.root}: ${(err as Error).message}`);
      });
      const state: InstanceState = {
        uid: spec.uid,
        engine: spec.engine,
        version: spec.version,
        port,
        adminPassword: '',
        expectRunning: false,
        provisioned: false,
        applied: {},
      };
      await writeState(paths, state);
      this.crash.reach('local.provision.allocated');
      return state;
    });
    this.allocation = allocated.catch(() => undefined);
    return allocated;
  }

  async capacity(): Promise<Capacity> {
    return hostCapacity(this.options.root, this.options.portRange, (await this.instances()).length);
  }

  private context(paths: InstancePaths, state: InstanceState): EngineContext {
    return {
      paths,
      state,
      as: this.as,
      location: this.options.catalog.location(state.engine, state.version) ?? '',
      listenHost: this.options.listenHost,
      templatesRoot: this.options.templatesRoot,
      crash: this.crash,
      saveState: () => writeState(paths, state),
    };
  }

  private fingerprints(ctx: EngineContext, spec: InstanceSpec) {
    return this.engine(ctx.state.engine).renderConfig(ctx, spec).fingerprints;
  }

  private engine(name: string): LocalEngine {
    return requireEngine(name).local;
  }

  private async watchProcesses(): Promise<void> {
    if (this.exitListeners.size === 0) return;
    const uids = await readdir(this.options.root).catch(() => [] as string[]);
    for (const uid of uids) {
      const paths = instancePaths(this.options.root, uid);
      const state = await readState(paths).catch(() => undefined);
      // A step under way (a restart, a restore that restarts it) stops and starts it on purpose.
      if (!state?.expectRunning || this.locks.held(uid)) continue;
      const alive = isAlive(await this.engine(state.engine).pid(this.context(paths, state)));
      if (alive) this.reportedDead.delete(uid);
      else if (!this.reportedDead.has(uid)) {
        this.reportedDead.add(uid);
        for (const listener of this.exitListeners) listener(uid);
      }
    }
  }
}
