import type { BackupStream, DatabaseLogin, DataFacts, InstanceSpec } from '../driver.js';
import type { CrashPoints } from '../../faults/crash-points.js';
import type { AsUser, InstancePaths, InstanceState } from './instance-files.js';

/** What an engine's local implementation works with. */
export interface EngineContext {
  paths: InstancePaths;
  state: InstanceState;
  as: AsUser;
  /** postgres: its bin directory; redis: the redis-server binary. */
  location: string;
  /** The address the server listens on for clients. */
  listenHost: string;
  /** Where per-version templates are kept. */
  templatesRoot: string;
  /** Marks each step that changes something outside the store (test-only fault injection). */
  crash: CrashPoints;
  /** Records the instance's state durably (atomic); a step that must survive a crash calls it. */
  saveState: () => Promise<void>;
}

/**
 * Fingerprints of the configuration an instance should run with, split by how a change takes
 * effect. The driver compares them with what it applied last to choose restart, reload or nothing.
 */
export interface ConfigFingerprints {
  restart: string;
  reload: string;
  acl: string;
}

export interface RenderedConfig {
  files: Array<{ path: string; content: string }>;
  fingerprints: ConfigFingerprints;
}

/**
 * Logins besides the owner's (DatabaseUsers), for engines whose module declares capabilities.users.
 * Called with the server running, under the instance's lock.
 */
export interface LocalUsers {
  /** Creates the login or makes it match (password, access). Idempotent. */
  apply(ctx: EngineContext, spec: InstanceSpec, login: DatabaseLogin): Promise<void>;
  /** Connects as the login: undefined when that works, else what failed. */
  probe(ctx: EngineContext, spec: InstanceSpec, login: DatabaseLogin): Promise<string | undefined>;
  /** Drops the login and ends its sessions. Idempotent: a login that is not there is nothing to do. */
  drop(ctx: EngineContext, spec: InstanceSpec, username: string): Promise<void>;
}

/**
 * The engine-specific part of the local driver: small on purpose. Everything else (directories,
 * ports, state, process watching, logs, usage, deletion) is shared in LocalDriver.
 */
export interface LocalEngine {
  /**
   * Creates the data directory for a first start, from nothing: called until it has once
   * completed (a crash part-way calls it again), so it removes whatever an earlier try left.
   */
  provision(ctx: EngineContext): Promise<void>;
  /** The configuration files spec asks for and their fingerprints. Pure: writes nothing. */
  renderConfig(ctx: EngineContext, spec: InstanceSpec): RenderedConfig;
  /** Starts the server detached from Kumo and waits until it accepts connections. Throws DriverError. */
  start(ctx: EngineContext, spec: InstanceSpec): Promise<void>;
  stop(ctx: EngineContext): Promise<void>;
  /** Applies reloadable configuration and the ACL without a restart. */
  reload(ctx: EngineContext, spec: InstanceSpec): Promise<void>;
  /** The server's PID as its pid file says (it may be dead). */
  pid(ctx: EngineContext): Promise<number | undefined>;
  /**
   * Whether any of the instance's processes runs (a kill between starting or stopping them can
   * leave one of several): such an instance is stopped whole before it is started again.
   */
  anyAlive(ctx: EngineContext): Promise<boolean>;
  /** Makes the spec's credentials the valid ones. Idempotent. */
  applyCredentials(ctx: EngineContext, spec: InstanceSpec): Promise<void>;
  /** Connects with the spec's credentials: undefined when that works, else what failed. */
  probe(ctx: EngineContext, spec: InstanceSpec): Promise<string | undefined>;
  /** A consistent backup of the running server's data, streamed or written to `output` (a file descriptor). */
  backup(ctx: EngineContext, spec: InstanceSpec, output?: number): Promise<BackupStream>;
  /** Loads a backup into this instance (replace: remove its current data first). */
  restore(
    ctx: EngineContext,
    spec: InstanceSpec,
    body: AsyncIterable<Uint8Array>,
    replace: boolean,
  ): Promise<void>;
  dataFacts(ctx: EngineContext, spec: InstanceSpec): Promise<DataFacts>;
  /** Logins besides the owner's; present exactly when the engine module declares capabilities.users. */
  readonly users?: LocalUsers;
}

export function fingerprint(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `${text.length}:${h.toString(16)}`;
}
