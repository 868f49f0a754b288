import type pg from 'pg';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../errors.js';
import { type AuditRecord, recordAudit } from '../store/audit-log.js';
import { type Queryable, isUniqueViolation, withTransaction } from '../store/sql.js';
import type { MemberRole } from './roles.js';
import { forgetInvitations } from './invitation-store.js';
import type { TokenStore } from './token-store.js';

export interface User {
  name: string;
  displayName: string | null;
  email: string | null;
  createdAt: string;
}

/** A role in an org for a user, optionally narrowed to some of its projects (null: the whole org). */
export interface MembershipInput {
  org: string;
  user: string;
  role: MemberRole;
  projects: string[] | null;
}

export interface Membership {
  org: string;
  user: string;
  role: MemberRole;
  /** null: the whole org. */
  projects: string[] | null;
  createdAt: string;
  updatedAt: string;
}

interface MembershipRow {
  org: string;
  user_name: string;
  role: MemberRole;
  projects: string[] | null;
  created_at: Date;
  updated_at: Date;
}

/**
 * Users and their org memberships. Every change is written with its audit entry in one
 * transaction. An org that has an owner always keeps at least one whole-org owner. Invitations
 * (invitation-store.ts) go with the user, org or project they name.
 */
export class MembershipStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly tokens: TokenStore,
  ) {}

  async createUser(
    input: { name: string; displayName?: string; email?: string },
    audit: AuditRecord,
  ): Promise<User> {
    try {
      return await withTransaction(this.pool, async (client) => {
        const { rows } = await client.query<{
          name: string;
          display_name: string | null;
          email: string | null;
          created_at: Date;
        }>('INSERT INTO users (name, display_name, email) VALUES ($1, $2, $3) RETURNING *', [
          input.name,
          input.displayName ?? null,
          input.email ?? null,
        ]);
        await recordAudit(client, audit, { action: 'create', kind: 'User', name: input.name });
        return toUser(rows[0]!);
      });
    } catch (err) {
      if (isUniqueViolation(err, 'users_pkey'))
        throw new AlreadyExistsError(`User "${input.name}" already exists. Choose another name.`);
      throw err;
    }
  }

  async listUsers(): Promise<User[]> {
    const { rows } = await this.pool.query('SELECT * FROM users ORDER BY name');
    return rows.map(toUser);
  }

  async getUser(name: string): Promise<User | undefined> {
    const { rows } = await this.pool.query('SELECT * FROM users WHERE name = $1', [name]);
    return rows[0] && toUser(rows[0]);
  }

  /** Removes a user, their memberships, and revokes their tokens. Refused while they are an org's last owner. */
  async deleteUser(name: string, audit: AuditRecord): Promise<User> {
    return withTransaction(this.pool, async (client) => {
      const { rows } = await client.query('SELECT * FROM users WHERE name = $1 FOR UPDATE', [name]);
      if (!rows[0]) throw new NotFoundError(`User "${name}" does not exist.`);
      const owned = await client.query<{ org: string }>(
        "SELECT org FROM memberships WHERE user_name = $1 AND role = 'owner' AND projects IS NULL ORDER BY org",
        [name],
      );
      for (const { org } of owned.rows) await lastOwnerCheck(client, org, name);
      await client.query('DELETE FROM users WHERE name = $1', [name]);
      await this.tokens.revokeAll({ principal: `user:${name}` }, client);
      // A user made later under this name must not find invitations meant for this one.
      await forgetInvitations(client, { user: name });
      await recordAudit(client, audit, { action: 'delete', kind: 'User', name });
      return toUser(rows[0]);
    });
  }

  async membershipsOf(user: string, client: Queryable = this.pool): Promise<Membership[]> {
    const { rows } = await client.query<MembershipRow>(
      'SELECT * FROM memberships WHERE user_name = $1 ORDER BY org',
      [user],
    );
    return rows.map(toMembership);
  }

  async membership(org: string, user: string): Promise<Membership | undefined> {
    const { rows } = await this.pool.query<MembershipRow>(
      'SELECT * FROM memberships WHERE org = $1 AND user_name = $2',
      [org, user],
    );
    return rows[0] && toMembership(rows[0]);
  }

  async members(org: string): Promise<Membership[]> {
    const { rows } = await this.pool.query<MembershipRow>(
      'SELECT * FROM memberships WHERE org = $1 ORDER BY user_name',
      [org],
    );
    return rows.map(toMembership);
  }

  /**
   * Adds a member or changes their role and projects. `check` sees the current membership (if any)
   * under lock and throws to refuse (the owner rules live with the caller, who knows who is asking).
   * Without `mayAdd` only an existing member is changed: anyone else is NotFoundError, the same for
   * every name, so it says nothing about which users exist (they are invited instead).
   */
  async setMember(
    input: MembershipInput,
    check: (current: Membership | undefined) => void,
    audit: AuditRecord,
    options: { mayAdd: boolean },
  ): Promise<Membership> {
    return withTransaction(this.pool, (client) => this.setMemberIn(client, input, check, audit, options));
  }

  /** setMember inside the caller's transaction (accepting an invitation adds its member with it). */
  async setMemberIn(
    client: Queryable,
    input: MembershipInput,
    check: (current: Membership | undefined) => void,
    audit: AuditRecord,
    { mayAdd }: { mayAdd: boolean },
  ): Promise<Membership> {
    // The user first, then the org's members: the order deleteUser locks them in.
    const user = await client.query('SELECT 1 FROM users WHERE name = $1 FOR SHARE', [input.user]);
    const current = await lockMembers(client, input.org, input.user);
    if (!current && !mayAdd) {
      throw new NotFoundError(
        `"${input.user}" is not a member of org "${input.org}". Invite them (POST /v1/orgs/${input.org}/invitations): they join when they accept.`,
      );
    }
    if (!user.rowCount) {
      throw new NotFoundError(
        `User "${input.user}" does not exist. An operator creates users (POST /v1/users).`,
      );
    }
    check(current);
    if (
      current?.role === 'owner' &&
      current.projects === null &&
      (input.role !== 'owner' || input.projects)
    ) {
      await lastOwnerCheck(client, input.org, input.user);
    }
    const { rows } = await client.query<MembershipRow>(
      `INSERT INTO memberships (org, user_name, role, projects) VALUES ($1, $2, $3, $4)
       ON CONFLICT (org, user_name) DO UPDATE SET role = $3, projects = $4, updated_at = now()
       RETURNING *`,
      [input.org, input.user, input.role, input.projects],
    );
    await recordAudit(client, audit, {
      action: current ? 'update-member' : 'add-member',
      kind: 'Member',
      name: input.user,
      org: input.org,
    });
    return toMembership(rows[0]!);
  }

  async removeMember(
    org: string,
    user: string,
    check: (current: Membership) => void,
    audit: AuditRecord,
  ): Promise<Membership> {
    return withTransaction(this.pool, async (client) => {
      const current = await lockMembers(client, org, user);
      if (!current) throw new NotFoundError(`"${user}" is not a member of org "${org}".`);
      check(current);
      if (current.role === 'owner' && current.projects === null) await lastOwnerCheck(client, org, user);
      await client.query('DELETE FROM memberships WHERE org = $1 AND user_name = $2', [org, user]);
      await recordAudit(client, audit, { action: 'remove-member', kind: 'Member', name: user, org });
      return current;
    });
  }

  /**
   * Takes a deleted project out of every membership, invitation and token narrowed to it, so a
   * project made later under the same name is not visible to them. One narrowed to nothing else is
   * left with no projects: it reaches none.
   */
  async forgetProject(org: string, project: string): Promise<void> {
    await withTransaction(this.pool, async (client) => {
      // Invitations before memberships: the order accepting one locks them in.
      await forgetInvitations(client, { org, project });
      await client.query(
        'UPDATE memberships SET projects = array_remove(projects, $2), updated_at = now() WHERE org = $1 AND $2 = ANY (projects)',
        [org, project],
      );
      await this.tokens.forgetProject(org, project, client);
    });
  }

  /** Forgets everything an org granted: its invitations, memberships and service tokens (when the org is deleted). */
  async forgetOrg(org: string): Promise<void> {
    await withTransaction(this.pool, async (client) => {
      await forgetInvitations(client, { org });
      await client.query('DELETE FROM memberships WHERE org = $1', [org]);
      await this.tokens.revokeAll({ serviceOrg: org }, client);
    });
  }
}

/** Locks the org's membership rows (so owner counts cannot race) and returns the user's one. */
async function lockMembers(client: Queryable, org: string, user: string): Promise<Membership | undefined> {
  const { rows } = await client.query<MembershipRow>(
    'SELECT * FROM memberships WHERE org = $1 ORDER BY user_name FOR UPDATE',
    [org],
  );
  const row = rows.find((r) => r.user_name === user);
  return row && toMembership(row);
}

async function lastOwnerCheck(client: Queryable, org: string, leaving: string): Promise<void> {
  const { rows } = await client.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM memberships WHERE org = $1 AND role = 'owner' AND projects IS NULL AND user_name <> $2",
    [org, leaving],
  );
  if (rows[0]!.n === 0) {
    throw new ConflictError(
      `"${leaving}" is the last owner of org "${org}". Make another member owner first, then change or remove this one.`,
    );
  }
}

function toUser(r: {
  name: string;
  display_name: string | null;
  email: string | null;
  created_at: Date;
}): User {
  return { name: r.name, displayName: r.display_name, email: r.email, createdAt: r.created_at.toISOString() };
}

function toMembership(r: MembershipRow): Membership {
  return {
    org: r.org,
    user: r.user_name,
    role: r.role,
    projects: r.projects,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}
