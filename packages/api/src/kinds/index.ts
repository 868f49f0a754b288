import type { KindDefinition } from '../kind.js';
import { backupKind } from './backup.js';
import { databaseKind } from './database.js';
import { orgKind } from './org.js';
import { projectKind } from './project.js';
import { targetKind } from './target.js';

export { backupKind, databaseKind, orgKind, projectKind, targetKind };

/** Every kind the API serves, in the order the OpenAPI document lists them. */
export const KINDS: readonly KindDefinition[] = [orgKind, projectKind, targetKind, databaseKind, backupKind];

export function kindByName(kind: string): KindDefinition | undefined {
  return KINDS.find((k) => k.kind === kind);
}
