import { KINDS, type KindDefinition } from '@kumo/api';
import { CliError, EXIT } from './exit-codes.js';

/** The names a user may type for a kind: kind, plural, and short forms. */
const ALIASES: Record<string, string> = { db: 'Database', dbs: 'Database', proj: 'Project' };

export function resolveKind(name: string): KindDefinition {
  const lower = name.toLowerCase();
  const kind = ALIASES[lower] ?? lower;
  const def = KINDS.find((k) => k.kind.toLowerCase() === kind.toLowerCase() || k.plural === kind);
  if (!def) {
    throw new CliError(
      `Unknown kind "${name}". Known: ${KINDS.map((k) => k.plural).join(', ')} (db for databases).`,
      EXIT.usage,
    );
  }
  return def;
}

/** The collection URL of a kind; project-scoped kinds need a project. */
export function collectionPath(def: KindDefinition, project: string | undefined): string {
  if (def.scope === 'platform') return `/v1/${def.plural}`;
  if (!project) {
    throw new CliError(
      `${def.plural} live in a project: pass --project NAME (or set one with \`kumo login --project\` / KUMO_PROJECT).`,
      EXIT.usage,
    );
  }
  return `/v1/projects/${project}/${def.plural}`;
}

export function itemPath(def: KindDefinition, project: string | undefined, name: string): string {
  return `${collectionPath(def, project)}/${encodeURIComponent(name)}`;
}

/** The word users type for a kind, as printed in results ("db/orders"). */
export const NOUNS: Record<string, string> = {
  Org: 'org',
  Project: 'project',
  Target: 'target',
  Database: 'db',
  Backup: 'backup',
  Webhook: 'webhook',
  DatabaseUser: 'db-user',
};

export function nounOf(kind: string): string {
  return NOUNS[kind] ?? kind.toLowerCase();
}
