import type { Readable } from 'node:stream';
import type { Resource } from '@kumo/api';

/**
 * What only a target's host can answer: a server's log and a backup's bytes where the object store
 * is local to it. The control plane asks through this one interface, addressed by target; the
 * answer comes from the agent in the same process or over the agent's gateway endpoint.
 */
export interface HostGateway {
  logs(target: string, uid: string, tail: number): Promise<string[]>;
  /** Calls onLine for every new line until signal aborts (or the agent goes away). */
  followLogs(target: string, uid: string, onLine: (line: string) => void, signal: AbortSignal): Promise<void>;
  /** A Succeeded backup's stored object. */
  openBackup(target: string, backup: Resource): Promise<Readable>;
}

/** The same, answered by one agent for its own target. */
export interface LocalHost {
  logs(uid: string, tail: number): Promise<string[]>;
  followLogs(uid: string, onLine: (line: string) => void, signal: AbortSignal): Promise<void>;
  openBackup(backup: Resource): Promise<Readable>;
}
