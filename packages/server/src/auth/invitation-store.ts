import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.js';
import { type AuditRecord, recordAudit } from '../store/audit-log.js';
import { type Queryable, withTransaction } from '../store/sql.js';
import type { Membership, MembershipInput, MembershipStore } from './membership-store.js';
import type { MemberRole } from './roles.js';

/** How long an invitation waits to be accepted. */
export const INVITATION_TTL_DAYS = 7;

/** An offer of a role in an org to a user name, pending until that user accepts or declines it. */
export interface Invitation {
  id: string;
  org: string;
  user: string;
  role: MemberRole;
  /** null: the whole org. */
  projects: string[] | null;
  /** Who invited: `user:…`, `service:…` or `operator:…`. */
  invitedBy: string;
  createdAt: string;
  expiresAt: string;
}

interface InvitationRow {
  id: string;
  org: string;
  user_name: string;
  role: MemberRole;
  projects: string[] | null;
  invited_by: string;
  created_at: Date;
  expires_at: Date;
}

/** What is pending: expired invitations are as good as gone. */
const PENDING = 'expires_at > now()';

/**
 * Invitations to join an org. Members are added by invitation so that nobody is made a member of
 * an org without agreeing to it, and so that inviting says nothing about which user names exist:
 * an invitation names a user name, whether or not a user has it, and only the user of that name
 * can accept it. Every change is written with its audit entry in one transaction.
 */
export class InvitationStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly memberships: MembershipStore,
  ) {}

  /**
   * Invites a user name into an org, replacing a pending invitation of the same name (it gets a
   * new id). Answers the same whether or not a user has the name. Throws ConflictError when they
   * are a member already (the org's members are no secret to whoever may invite).
   */
  async invite(
    input: MembershipInput,
    audit: AuditRecord,
    /** Whether the inviter may make owners: only then may a pending owner invitation be replaced. */
    mayManageOwners: boolean,
  ): Promise<Invitation> {
    return withTransaction(this.pool, async (client) => {
      const pending = await client.query<{ role: string }>(
        `SELECT role FROM invitations WHERE org = $1 AND user_name = $2 AND ${PENDING} FOR UPDATE`,
        [input.org, input.user],
      );
      if (pending.rows[0]?.role === 'owner' && !mayManageOwners)
        throw new ForbiddenError(
          `"${input.user}" has a pending owner invitation to org "${input.org}"; only owners may replace it.`,
        );
      const member = await client.query('SELECT role FROM memberships WHERE org = $1 AND user_name = $2', [
        input.org,
        input.user,
      ]);
      if (member.rowCount) {
        throw new ConflictError(
          `"${input.user}" is already a member of org "${input.org}". Change their role instead (PUT /v1/orgs/${input.org}/members/${input.user}).`,
        );
      }
      await client.query(`DELETE FROM invitations WHERE org = $1 AND NOT (${PENDING})`, [input.org]);
      const { rows } = await client.query<InvitationRow>(
        `INSERT INTO invitations (id, org, user_name, role, projects, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7))
         ON CONFLICT (org, user_name) DO UPDATE
           SET id = $1, role = $4, projects = $5, invited_by = $6, created_at = now(), expires_at = now() + make_interval(days => $7)
         RETURNING *`,
        [randomUUID(), input.org, input.user, input.role, input.projects, audit.actor, INVITATION_TTL_DAYS],
      );
      await recordAudit(client, audit, {
        action: 'invite-member',
        kind: 'Member',
        name: input.user,
        org: input.org,
      });
      return toInvitation(rows[0]!);
    });
  }

  /** The org's pending invitations, by user name. */
  async ofOrg(org: string): Promise<Invitation[]> {
    const { rows } = await this.pool.query<InvitationRow>(
      `SELECT * FROM invitations WHERE org = $1 AND ${PENDING} ORDER BY user_name`,
      [org],
    );
    return rows.map(toInvitation);
  }

  /** A user's pending invitations by org (only those of `org` when it is given); every one's without a user. */
  async pending(filter: { user: string; org: string | null } | 'all'): Promise<Invitation[]> {
    const { rows } =
      filter === 'all'
        ? await this.pool.query<InvitationRow>(
            `SELECT * FROM invitations WHERE ${PENDING} ORDER BY org, user_name`,
          )
        : await this.pool.query<InvitationRow>(
            `SELECT * FROM invitations WHERE user_name = $1 AND ($2::text IS NULL OR org = $2) AND ${PENDING} ORDER BY org`,
            [filter.user, filter.org],
          );
    return rows.map(toInvitation);
  }

  /** Withdraws a pending invitation of the org. `check` sees it and throws to refuse. Throws NotFoundError. */
  async cancel(
    org: string,
    id: string,
    check: (invitation: Invitation) => void,
    audit: AuditRecord,
  ): Promise<Invitation> {
    return withTransaction(this.pool, async (client) => {
      const { rows } = await client.query<InvitationRow>(
        `DELETE FROM invitations WHERE id = $1 AND org = $2 AND ${PENDING} RETURNING *`,
        [id, org],
      );
      if (!rows[0]) throw new NotFoundError(`Org "${org}" has no pending invitation ${id}.`);
      const invitation = toInvitation(rows[0]);
      check(invitation);
      await recordAudit(client, audit, {
        action: 'cancel-invitation',
        kind: 'Member',
        name: invitation.user,
        org,
      });
      return invitation;
    });
  }

  /**
   * The invited user accepts: they become a member with the invited role, and the invitation is
   * gone. `org` (a token narrowed to one org) limits which invitations they may act on. Throws
   * NotFoundError for an invitation that is not theirs, expired or does not exist (all alike), and
   * ConflictError when they are a member of the org already.
   */
  async accept(id: string, user: string, org: string | null, audit: AuditRecord): Promise<Membership> {
    return withTransaction(this.pool, async (client) => {
      // The user first, then the invitation, then the org's members: the order deletes lock them in.
      await client.query('SELECT 1 FROM users WHERE name = $1 FOR SHARE', [user]);
      const invitation = await take(client, id, user, org);
      await recordAudit(client, audit, {
        action: 'accept-invitation',
        kind: 'Member',
        name: user,
        org: invitation.org,
      });
      return this.memberships.setMemberIn(
        client,
        { org: invitation.org, user, role: invitation.role, projects: invitation.projects },
        (current) => {
          if (current) {
            throw new ConflictError(
              `You are already a member of org "${invitation.org}" (${current.role}). Decline the invitation, or ask an owner or admin to change your role.`,
            );
          }
        },
        audit,
        { mayAdd: true },
      );
    });
  }

  /** The invited user declines: the invitation is gone. Throws NotFoundError as accept does. */
  async decline(id: string, user: string, org: string | null, audit: AuditRecord): Promise<Invitation> {
    return withTransaction(this.pool, async (client) => {
      const invitation = await take(client, id, user, org);
      await recordAudit(client, audit, {
        action: 'decline-invitation',
        kind: 'Member',
        name: user,
        org: invitation.org,
      });
      return invitation;
    });
  }
}

async function take(client: Queryable, id: string, user: string, org: string | null): Promise<Invitation> {
  const { rows } = await client.query<InvitationRow>(
    `DELETE FROM invitations WHERE id = $1 AND user_name = $2 AND ($3::text IS NULL OR org = $3) AND ${PENDING}
     RETURNING *`,
    [id, user, org],
  );
  if (!rows[0]) throw new NotFoundError(`You have no invitation ${id}. See GET /v1/invitations.`);
  return toInvitation(rows[0]);
}

/**
 * Removes the invitations of a deleted user or org, or takes a deleted project out of every
 * invitation narrowed to it (one narrowed to nothing else then reaches no project once accepted).
 */
export async function forgetInvitations(
  client: Queryable,
  what: { user: string } | { org: string; project?: string },
): Promise<void> {
  if ('user' in what) {
    await client.query('DELETE FROM invitations WHERE user_name = $1', [what.user]);
  } else if (what.project === undefined) {
    await client.query('DELETE FROM invitations WHERE org = $1', [what.org]);
  } else {
    await client.query(
      'UPDATE invitations SET projects = array_remove(projects, $2) WHERE org = $1 AND $2 = ANY (projects)',
      [what.org, what.project],
    );
  }
}

function toInvitation(r: InvitationRow): Invitation {
  return {
    id: r.id,
    org: r.org,
    user: r.user_name,
    role: r.role,
    projects: r.projects,
    invitedBy: r.invited_by,
    createdAt: r.created_at.toISOString(),
    expiresAt: r.expires_at.toISOString(),
  };
}
