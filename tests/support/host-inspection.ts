import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { processesUnder } from './kumo-child.js';

/**
 * What interrupted work of Kumo left under its data directory: its temporary files and
 * directories (`*.kumo-tmp`, `*.tmp`, `data.building-*`, `*.restoring`, a template's
 * initdb-pwfile), and separately the temporary files of interrupted backup uploads
 * (`*.partial-*`), which the agent sweeps after an hour by design (docs/backups.md).
 * PostgreSQL's own files inside a server's data directory are its business, not Kumo's.
 */
export async function leftoversUnder(dataDir: string): Promise<{ leftovers: string[]; uploads: string[] }> {
  const leftovers: string[] = [];
  const uploads: string[] = [];
  for (const entry of await readdir(dataDir, { recursive: true, withFileTypes: true })) {
    const path = relative(dataDir, join(entry.parentPath, entry.name));
    const serverData = /^(store\/pgdata|databases\/[^/]+\/data)\//.test(path);
    if (
      entry.name.endsWith('.kumo-tmp') ||
      entry.name.startsWith('data.building-') ||
      entry.name.endsWith('.restoring') ||
      (entry.name === 'initdb-pwfile' && path.startsWith('templates/')) ||
      (entry.name.endsWith('.tmp') && !serverData)
    )
      leftovers.push(path);
    if (entry.name.includes('.partial-')) uploads.push(path);
  }
  return { leftovers, uploads };
}

/** The servers of a local target, as found in the process table. */
export interface HostServers {
  /** Postmasters of the embedded store. */
  stores: number;
  /** Per instance uid, its server processes, sorted: 'postgres', 'redis-server', 'mariadbd', 'acl-proxy'. */
  servers: Map<string, string[]>;
  /** Every other process naming the data directory ("pid args"), Kumo itself (kumoPid) aside. */
  others: string[];
}

/** Sorts the processes whose command line names dataDir into the store, servers and the rest. */
export function serversUnder(dataDir: string, kumoPid: number | undefined): HostServers {
  const found: HostServers = { stores: 0, servers: new Map(), others: [] };
  for (const p of processesUnder(dataDir)) {
    if (p.pid === kumoPid) continue;
    const uid = /\/databases\/([0-9a-f-]{36})\//.exec(p.args)?.[1];
    const what = p.args.includes('acl-proxy.mjs')
      ? 'acl-proxy'
      : /(^|\/)redis-server /.test(p.args)
        ? 'redis-server'
        : /(^|\/)mariadbd /.test(p.args)
          ? 'mariadbd'
          : /\/bin\/postgres -D /.test(p.args)
            ? 'postgres'
            : undefined;
    if (what === 'postgres' && p.args.includes(`${dataDir}/store/pgdata`)) found.stores++;
    else if (uid && what) found.servers.set(uid, [...(found.servers.get(uid) ?? []), what].sort());
    else found.others.push(`${p.pid} ${p.args}`);
  }
  return found;
}
