import type { EngineCapabilities, EngineClient, ParameterSpec, Plan } from '@kumo/api';
import type { DataFacts } from '../drivers/driver.js';
import type { LocalEngine } from '../drivers/local/local-engine.js';

/** Where to look for an engine's binaries on a host. */
export interface DiscoveryOptions {
  /** The PATH to search. */
  path: string;
  /** KUMO_PG_BIN and similar overrides, by engine module: a directory with the binaries. */
  pgBin?: string;
  /** Where distributions install versioned server binaries (PostgreSQL: /usr/lib/postgresql). */
  versionedRoot?: string;
}

/** One installed version of an engine on this host. */
export interface InstalledVersion {
  version: string;
  /** Where its binaries are, as the engine's local runtime expects (a bin directory or a binary). */
  location: string;
}

/** The parts of a database a connection needs, resolved by the caller. */
export interface ConnectionParts {
  host: string;
  port: number;
  username: string;
  password: string;
  /** The database (schema) the credentials own; engines without one ignore it. */
  database: string;
}

/**
 * One database engine, whole: its catalog (plans, parameters, limits that depend on the plan), how
 * it is found on a host, its local runtime (which includes backup, restore and data facts), what a
 * backup of it is, the connection details it hands out and the client `kumo db connect` opens.
 * Each engine is a folder under engines/ with the same files; registry.ts lists them once. Core
 * code asks the module or reads its capability flags; it never compares engine names.
 */
export interface EngineModule {
  /** The value of `spec.engine`. */
  readonly name: string;
  /** The product's name, e.g. "PostgreSQL". */
  readonly title: string;
  readonly description: string;
  readonly plans: readonly Plan[];
  readonly parameters: readonly ParameterSpec[];
  readonly capabilities: EngineCapabilities;
  readonly client: EngineClient;
  /**
   * Parameter limits that depend on the plan (a buffer no larger than the plan's memory): one
   * message per parameter that does not fit, keyed by parameter name.
   */
  planLimits(
    plan: Plan,
    parameters: Readonly<Record<string, string | number | boolean>>,
  ): Record<string, string>;
  /** The versions installed on this host, newest first. */
  discover(options: DiscoveryOptions): InstalledVersion[];
  /** Its runtime on the local driver: processes of this host, run as the service user. */
  readonly local: LocalEngine;
  readonly backup: {
    /** The file extension of a dump, e.g. "dump", "rdb", "sql". */
    extension: string;
    /** What a verification found when the restored data matches, in words. */
    describeFacts(facts: DataFacts): string;
  };
  /** The URI a client connects with; credentials URL-encoded. */
  connectionUri(parts: ConnectionParts): string;
}
