import {
  type Condition,
  type Resource,
  databaseUsername,
  type databaseKind,
  type databaseUserKind,
  setCondition,
} from '@kumo/api';
import type { z } from 'zod';
import { TerminalError, type ReconcileResult, type Reconciler } from '../controllers/runtime/reconciler.js';
import { type DatabaseLogin, DriverError, type RuntimeDriver } from '../drivers/driver.js';
import type { EngineCatalog } from '../engines/engine-catalog.js';
import { engineModule } from '../engines/registry.js';
import type { ResourceKey } from '../store/resource-rows.js';
import type { AgentClient } from './agent-client.js';
import { instanceSpecOf } from './instance-spec.js';

export const USER_FINALIZER = 'kumo.dev/database-user';

type UserSpec = z.infer<typeof databaseUserKind.spec>;
type UserStatus = z.infer<typeof databaseUserKind.status>;
type DatabaseSpec = z.infer<typeof databaseKind.spec>;

/** How soon a user whose database is not Ready yet is looked at again. */
const DATABASE_WAIT_MS = 2000;
/** A Ready user is probed this often (and applied again if its login stopped working). */
const OBSERVE_INTERVAL_MS = 30_000;
/** Longest user name every engine keeps whole (PostgreSQL truncates at 63 bytes). */
const MAX_USERNAME = 63;

/**
 * The agent's reconciler for DatabaseUsers of its target's databases: creates each login on its
 * database's server once that is Ready, reports Ready only when a real connection as it succeeds,
 * and, when the DatabaseUser is deleted, drops the login (ending its sessions) before it releases
 * its finalizer. Every step is idempotent: a crash at any line is repaired by running it again.
 */
export class DatabaseUserReconciler implements Reconciler {
  readonly name = 'database-user-agent';
  readonly kind = 'DatabaseUser';

  constructor(
    private readonly client: AgentClient,
    private readonly driver: RuntimeDriver,
    private readonly catalog: EngineCatalog,
    private readonly target: string,
  ) {}

  async reconcile(key: ResourceKey): Promise<ReconcileResult | void> {
    const user = await this.client.get(key);
    if (!user) return;
    const spec = user.spec as UserSpec;
    const status = user.status as UserStatus;
    const found = await this.client.get({ kind: 'Database', project: key.project, name: spec.database });
    // A database of the same name made later is not the one this user was created on.
    const db =
      found && (!status.databaseUid || found.metadata.uid === status.databaseUid) ? found : undefined;
    if (db && (db.spec as DatabaseSpec).target !== this.target) return;
    const username = databaseUsername(user.metadata.name);

    if (user.metadata.deletionTimestamp) {
      if (!user.metadata.finalizers.includes(USER_FINALIZER)) return;
      // A database that is gone (or going) takes its logins with it: nothing to drop.
      if (db && !db.metadata.deletionTimestamp && this.driver.dropUser) {
        try {
          await this.driver.dropUser(await this.instanceOf(db), username);
        } catch (err) {
          await this.report(user, db, 'Deleting', 'DropFailed', (err as Error).message);
          throw err;
        }
        await this.client.event(user, 'Normal', 'Dropped', `user ${username} dropped; its sessions ended`);
      }
      await this.client.removeFinalizer(key, USER_FINALIZER);
      return;
    }

    if (!db) {
      await this.report(
        user,
        undefined,
        'Error',
        'DatabaseNotFound',
        `Database "${spec.database}" does not exist.`,
      );
      return;
    }
    const engine = (db.spec as DatabaseSpec).engine;
    if (!engineModule(engine)?.capabilities.users || !this.driver.applyUser || !this.driver.probeUser)
      throw new TerminalError(
        'UsersUnsupported',
        `${engineModule(engine)?.title ?? engine} databases have no users of their own on target ${this.target}; use the database's credentials.`,
      );
    if (username.length > MAX_USERNAME)
      throw new TerminalError(
        'NameTooLong',
        `The user name ${username} is longer than ${MAX_USERNAME} characters: name the DatabaseUser with at most ${MAX_USERNAME - 2}.`,
      );
    if (db.metadata.deletionTimestamp) {
      await this.report(
        user,
        db,
        'Error',
        'DatabaseDeleting',
        `Database "${spec.database}" is being deleted.`,
      );
      return;
    }
    if (db.status.phase !== 'Ready') {
      await this.report(
        user,
        db,
        'Pending',
        'DatabaseNotReady',
        `waiting for database "${spec.database}" to be Ready`,
      );
      return { requeueAfterMs: DATABASE_WAIT_MS };
    }

    const instance = await this.instanceOf(db);
    const login: DatabaseLogin = {
      username,
      password: (await this.client.credentials(user)).password,
      access: spec.access,
    };
    try {
      const ready = status.phase === 'Ready' && status.observedGeneration === user.metadata.generation;
      if (!ready || (await this.driver.probeUser(instance, login)) !== undefined) {
        await this.driver.applyUser(instance, login);
        await this.client.event(user, 'Normal', 'Applied', `user ${username} (${spec.access}) applied`);
      }
      const failed = await this.driver.probeUser(instance, login);
      if (failed === undefined) await this.report(user, db, 'Ready', 'Applied', '');
      else await this.report(user, db, 'Pending', 'LoginFailed', failed);
    } catch (err) {
      // Whatever failed is said on the user (an engine's own error too), and tried again.
      const terminal = err instanceof DriverError && err.terminal;
      const reason = err instanceof DriverError ? err.reason : 'ApplyFailed';
      await this.report(user, db, terminal ? 'Error' : 'Pending', reason, (err as Error).message);
      if (terminal) throw new TerminalError(reason, (err as Error).message);
      throw err;
    }
    return { requeueAfterMs: OBSERVE_INTERVAL_MS };
  }

  private async instanceOf(db: Resource) {
    return instanceSpecOf(db, this.catalog, await this.client.credentials(db));
  }

  /** Writes what was found for the generation read at the start of this reconcile. */
  private async report(
    user: Resource,
    db: Resource | undefined,
    phase: string,
    reason: string,
    message: string,
  ): Promise<void> {
    const g = user.metadata.generation;
    await this.client.updateStatus(
      { kind: user.kind, project: user.metadata.project ?? '', name: user.metadata.name },
      (current) => ({
        ...current.status,
        phase: current.metadata.deletionTimestamp ? 'Deleting' : phase,
        username: databaseUsername(user.metadata.name),
        ...(db ? { databaseUid: db.metadata.uid } : {}),
        conditions: setCondition(current.status.conditions as Condition[] | undefined, {
          type: 'Ready',
          status: phase === 'Ready' ? 'True' : 'False',
          reason,
          message,
          observedGeneration: g,
        }),
      }),
      g,
    );
  }
}
