/** The wire shapes of the tenancy API (tokens, members, invitations, quotas, the audit log): one definition for the server, the CLI and the console. */

export const QUOTA_NAMES = ['databases', 'storageGB', 'backups'] as const;
export type QuotaName = (typeof QUOTA_NAMES)[number];

/** A quota scope's limits (null: no limit at this level) with what is used and left. */
export interface QuotaReport {
  scope: 'org' | 'project';
  name: string;
  items: Array<{ quota: QuotaName; limit: number | null; used: number; remaining: number | null }>;
}

/** A token as it is shown after creation: everything but the secret. */
export interface TokenInfo {
  id: string;
  name: string;
  prefix: string;
  principal: string;
  role: string;
  org: string | null;
  projects: string[] | null;
  createdBy: string | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** A user's role in an org, optionally narrowed to some of its projects. */
export interface MemberInfo {
  org: string;
  user: string;
  role: string;
  /** null: the whole org. */
  projects: string[] | null;
  createdAt: string;
  updatedAt: string;
}

/**
 * An offer of a role in an org to a user name, pending until that user accepts or declines it, an
 * owner or admin cancels it, or it expires (then it is gone).
 */
export interface InvitationInfo {
  id: string;
  org: string;
  user: string;
  role: string;
  /** null: the whole org. */
  projects: string[] | null;
  /** Who invited: `user:…`, `service:…` or `operator:…`. */
  invitedBy: string;
  createdAt: string;
  expiresAt: string;
}

/** One entry of the audit log: who did what to which thing, when and from where. */
export interface AuditEntry {
  id: string;
  at: string;
  org: string | null;
  actor: string;
  tokenId: string | null;
  action: string;
  kind: string;
  project: string;
  name: string;
  outcome: string;
  requestId: string | null;
  source: string | null;
}
