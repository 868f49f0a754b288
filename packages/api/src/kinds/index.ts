import type { KindDefinition } from '../kind.js';
import { backupKind } from './backup.js';
import { databaseKind } from './database.js';
import { databaseUserKind } from './database-user.js';
import { orgKind } from './org.js';
import { projectKind } from './project.js';
import { targetKind } from './target.js';
import { webhookKind } from './webhook.js';

export { backupKind, databaseKind, databaseUserKind, orgKind, projectKind, targetKind, webhookKind };
export * from './webhook.js';
export { databaseAccessSchema, databaseUsername, type DatabaseAccess } from './database-user.js';

/** Every kind the API serves, in the order the OpenAPI document lists them. */
export const KINDS: readonly KindDefinition[] = [
  orgKind,
  projectKind,
  targetKind,
  databaseKind,
  backupKind,
  databaseUserKind,
  webhookKind,
];

export function kindByName(kind: string): KindDefinition | undefined {
  return KINDS.find((k) => k.kind === kind);
}
