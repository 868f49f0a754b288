import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setCondition } from '@kumo/api';
import type { TokenStore } from './auth/token-store.js';
import type { StatusWriter } from './controllers/runtime/status-writer.js';
import { AlreadyExistsError } from './errors.js';
import type { ResourceStore } from './store/resource-store.js';

export const ADMIN_PRINCIPAL = 'operator:admin';

export interface AdminToken {
  /** The plain token when it was just created or its file is still there. */
  token: string | undefined;
  file: string;
  created: boolean;
}

/**
 * Creates the operator's admin token on first start: stored hashed, the plain secret written to a
 * mode-0600 file for scripts. Later starts only read the file. Idempotent.
 */
export async function ensureAdminToken(tokens: TokenStore, dataDir: string): Promise<AdminToken> {
  const file = join(dataDir, 'admin-token');
  if (await tokens.existsFor(ADMIN_PRINCIPAL)) {
    const token = await readFile(file, 'utf8').then(
      (t) => t.trim(),
      () => undefined,
    );
    return { token, file, created: false };
  }
  const { token } = await tokens.create({
    name: 'admin',
    principal: ADMIN_PRINCIPAL,
    role: 'operator',
    createdBy: 'kumo up',
  });
  await writeFile(file, token + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return { token, file, created: true };
}

/** Registers the single-node target "local". Its agent arrives with the local runtime; until then it says so. */
export async function ensureLocalTarget(store: ResourceStore, status: StatusWriter): Promise<void> {
  const key = { kind: 'Target', project: '', name: 'local' };
  if (!(await store.get(key))) {
    await store
      .create(
        'Target',
        '',
        {
          name: 'local',
          labels: {},
          finalizers: [],
          spec: { driver: 'local', description: 'This host (kumo up)' },
        },
        { actor: 'system:bootstrap' },
      )
      .catch((err) => {
        if (!(err instanceof AlreadyExistsError)) throw err;
      });
  }
  await status.update(key, (current) => {
    if (current.status.agent) return current.status;
    return {
      ...current.status,
      phase: 'Pending',
      conditions: setCondition(undefined, {
        type: 'Ready',
        status: 'False',
        reason: 'NoAgent',
        message: 'No agent has reported for this target yet.',
      }),
    };
  });
}
