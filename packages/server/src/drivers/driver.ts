import type { Plan } from '@kumo/api';

/** Everything a driver needs to run one database, resolved by the agent from the resource. */
export interface InstanceSpec {
  uid: string;
  name: string;
  /** The engine module's name (engines/registry.ts). */
  engine: string;
  version: string;
  plan: Plan;
  storageGB: number;
  /** The user's parameter overrides (validated against the engine catalog). */
  parameters: Record<string, string | number | boolean>;
  /** Source networks allowed to connect, expired entries already removed. Empty: no network access. */
  acl: string[];
  stopped: boolean;
  credentials: { username: string; password: string; version: number };
}

/** What a driver sees on its target. observe() never blocks for long and never changes anything. */
export interface Observation {
  /** The instance's data exists on the target. */
  exists: boolean;
  /** Its server process is alive. */
  running: boolean;
  /** A real connection with the spec's credentials succeeds. */
  ready: boolean;
  /** Configuration, ACL and credentials on the target match the spec. */
  configApplied: boolean;
  aclApplied: boolean;
  credentialsApplied: boolean;
  /** The version of the credentials the server was last given, when it was given any. */
  credentialsVersion?: number;
  /** The process died while it should have been running (not stopped by Kumo). */
  crashed: boolean;
  endpoint?: { host: string; port: number };
  /** What the instance uses; absent when the driver could not measure it (never a guessed 0). */
  usage?: { storageBytes: number };
  /** What is wrong, in words, when something is. */
  message: string;
}

/** An observation of nothing: no instance (yet), or a target that could not be looked at. */
export function nothingObserved(message: string): Observation {
  return {
    exists: false,
    running: false,
    ready: false,
    configApplied: false,
    aclApplied: false,
    credentialsApplied: false,
    crashed: false,
    message,
  };
}

/** What apply() did, for events: e.g. "Created", "Started", "Reloaded", "Restarted". */
export interface ApplyOutcome {
  actions: Array<{ reason: string; message: string }>;
}

export interface DriverCapabilities {
  supportsStop: boolean;
  supportsLogs: boolean;
  supportsReload: boolean;
  supportsBackup: boolean;
}

/** What a backup holds, measured in the same snapshot as the dump, to compare after a restore. */
export interface DataFacts {
  /** One entry per table ("schema.table") or per logical database ("db0"), as the engine measures. */
  tables: Array<{ name: string; rows: number; checksum: string }>;
}

/**
 * A backup being taken: read body to the end; facts settle once the dump has finished. When the
 * dump was given a file descriptor to write to, there is no body: the dump is done when facts settle.
 */
export interface BackupStream {
  body?: AsyncIterable<Uint8Array>;
  /** Rejects when the dump failed (even after all bytes were read). */
  facts: Promise<DataFacts>;
  /** The dump tool and its version, for the manifest, e.g. "pg_dump (PostgreSQL) 15.19". */
  tool: string;
  /** The dump's media type, as the engine names it (e.g. "application/x-pg-dump"). */
  format: string;
}

/** Backup, restore and data comparison, for drivers with capabilities.supportsBackup. */
export interface BackupDriver {
  /**
   * A consistent backup of the instance's data. `output`: a file descriptor the dump tool writes to
   * directly (a store's local file), instead of streaming it through `body`. Throws DriverError.
   */
  backup(spec: InstanceSpec, output?: number): Promise<BackupStream>;
  /**
   * Loads a backup into this instance and only this one. `replace`: first removes what is there
   * (in-place restore); otherwise the instance is expected to be new and empty. Throws DriverError.
   */
  restore(spec: InstanceSpec, body: AsyncIterable<Uint8Array>, options: { replace: boolean }): Promise<void>;
  /** The instance's data facts now, to compare with a backup's. */
  dataFacts(spec: InstanceSpec): Promise<DataFacts>;
}

/** A login of its own on an instance's database (a DatabaseUser), resolved by the agent. */
export interface DatabaseLogin {
  username: string;
  password: string;
  access: 'read-write' | 'read-only';
}

/**
 * Logins besides the owner's, for drivers whose engine module declares capabilities.users. Each
 * step needs the instance's server running (DriverError NotRunning otherwise, worth a retry).
 */
export interface UserDriver {
  /** Creates the login, or makes its password and access the given ones. Idempotent. Throws DriverError. */
  applyUser(spec: InstanceSpec, login: DatabaseLogin): Promise<void>;
  /** Connects as the login: undefined when that works, else what failed. Changes nothing. */
  probeUser(spec: InstanceSpec, login: DatabaseLogin): Promise<string | undefined>;
  /**
   * Drops the login and ends its sessions, so its password stops working at once. Idempotent: a
   * login (or an instance) that is not there is nothing to do. Throws DriverError.
   */
  dropUser(spec: InstanceSpec, username: string): Promise<void>;
}

/** A failure with a condition reason; `terminal` ones will not get better by retrying. */
export class DriverError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly terminal = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What a target can still take, as its agent measures it (published in Target.status.capacity). */
export interface Capacity {
  cpus: number;
  memoryBytes: number;
  diskFreeBytes: number;
  /** Ports of the range not yet given to an instance. */
  freePorts: number;
  instances: number;
}

/**
 * Runs databases somewhere. One small interface, many implementations (local processes now,
 * Kubernetes later), all passing runDriverContract. Core code checks capabilities, never names.
 */
export interface RuntimeDriver extends Partial<BackupDriver>, Partial<UserDriver> {
  readonly capabilities: DriverCapabilities;
  observe(spec: InstanceSpec): Promise<Observation>;
  /** Creates or converges the instance to spec. Idempotent. Throws DriverError. */
  apply(spec: InstanceSpec): Promise<ApplyOutcome>;
  /** Stops the instance and removes every trace of it. Idempotent. */
  delete(uid: string): Promise<void>;
  /**
   * Whether a step on the instance is under way that a change would have to wait for (a backup's
   * dump): a reconcile comes back later instead of holding a worker while it waits.
   */
  busy(uid: string): boolean;
  /** The uids of the instances this driver has (whatever state they are in). */
  instances(): Promise<string[]>;
  /**
   * Removes what steps a crash interrupted left behind (temporary files, half-built templates).
   * Called once at start, before any reconcile. Idempotent; never touches an instance's data.
   */
  sweep(): Promise<number>;
  /** The last `tail` lines of the server's log. */
  logs(uid: string, tail: number): Promise<string[]>;
  /** Calls onLine for every new log line until signal aborts. */
  followLogs(uid: string, onLine: (line: string) => void, signal: AbortSignal): Promise<void>;
  /** Calls listener soon (≈1 s) after an instance's process exits unexpectedly. */
  onProcessExit(listener: (uid: string) => void): () => void;
  /** What the target has: CPUs, memory, free disk and ports (what its databases' plans claim, the control plane counts). */
  capacity(): Promise<Capacity>;
  /** Stops background work (watchers). Leaves instances running. */
  close(): Promise<void>;
}
