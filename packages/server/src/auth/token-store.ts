import type { TokenInfo } from '@kumo/api';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import type { Queryable } from '../store/sql.js';
import type { MemberRole } from './roles.js';

/**
 * The role a token carries: a member role, operator for the platform's own staff, or agent for the
 * agent of one target (it may call the agent API for that target and nothing else).
 */
export type TokenRole = 'operator' | 'agent' | MemberRole;

/**
 * Who is calling, as their token says. Operators run the platform; users act through their org
 * memberships; service tokens belong to one org. A token never does more than its role allows.
 */
export interface Principal {
  /** `operator:<name>`, `user:<name>`, `service:<org>/<token name>` or `agent:<target>`. */
  id: string;
  kind: 'operator' | 'user' | 'service' | 'agent';
  tokenId: string;
  role: TokenRole;
  /** A service token's org, or the one org a personal token is narrowed to. */
  org: string | null;
  /** Narrowed to these projects (of `org`), or null. */
  projects: string[] | null;
  /** An agent token's target. */
  target?: string;
}

export interface NewToken {
  name: string;
  principal: string;
  role: TokenRole;
  org?: string | null;
  projects?: string[] | null;
  /** Agent tokens: the one target they act for. */
  target?: string;
  createdBy: string;
  expiresAt?: Date;
}

export interface CreatedToken {
  id: string;
  /** The secret, shown once: `kumo_<prefix>_<secret>`. Only its hash is stored. */
  token: string;
}

const TOKEN_FORMAT = /^kumo_([A-Za-z0-9]{12})_([A-Za-z0-9]{43})$/;
const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const LAST_USED_RESOLUTION_MS = 60_000;

/** API tokens: stored as SHA-256 hashes (the secrets are 43 random alphanumerics, 256 bits), looked up by prefix. */
export class TokenStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(input: NewToken): Promise<CreatedToken> {
    const prefix = randomAlphanumeric(12);
    const secret = randomAlphanumeric(43);
    const id = randomUUID();
    await this.pool.query(
      `INSERT INTO tokens (id, name, prefix, secret_hash, principal, role, org, projects, created_by, expires_at, target)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        id,
        input.name,
        prefix,
        hash(secret),
        input.principal,
        input.role,
        input.org ?? null,
        input.projects ?? null,
        input.createdBy,
        input.expiresAt ?? null,
        input.target ?? null,
      ],
    );
    return { id, token: `kumo_${prefix}_${secret}` };
  }

  /** The principal a bearer token stands for, or undefined (unknown, malformed, expired or revoked). */
  async authenticate(token: string): Promise<Principal | undefined> {
    const match = TOKEN_FORMAT.exec(token);
    if (!match) return undefined;
    const [, prefix, secret] = match as unknown as [string, string, string];
    const { rows } = await this.pool.query<{
      id: string;
      secret_hash: string;
      principal: string;
      role: TokenRole;
      org: string | null;
      projects: string[] | null;
      expires_at: Date | null;
      revoked_at: Date | null;
      last_used_at: Date | null;
      target: string | null;
    }>(
      'SELECT id, secret_hash, principal, role, org, projects, expires_at, revoked_at, last_used_at, target FROM tokens WHERE prefix = $1',
      [prefix],
    );
    const row = rows[0];
    if (!row) return undefined;
    const expected = Buffer.from(row.secret_hash, 'hex');
    if (!timingSafeEqual(expected, Buffer.from(hash(secret), 'hex'))) return undefined;
    const now = Date.now();
    if (row.revoked_at || (row.expires_at && row.expires_at.getTime() <= now)) return undefined;
    if (!row.last_used_at || now - row.last_used_at.getTime() > LAST_USED_RESOLUTION_MS) {
      await this.pool.query('UPDATE tokens SET last_used_at = now() WHERE id = $1', [row.id]);
    }
    return {
      id: row.principal,
      kind: principalKind(row.principal),
      tokenId: row.id,
      role: row.role,
      org: row.org,
      projects: row.projects,
      ...(row.target ? { target: row.target } : {}),
    };
  }

  /**
   * Tokens without their secrets, newest first: all of them, or those of these principals and the
   * service tokens of these orgs.
   */
  async list(filter?: TokenScope): Promise<TokenInfo[]> {
    const { rows } = filter
      ? await this.pool.query<TokenRow>(
          `SELECT ${COLUMNS} FROM tokens
           WHERE principal = ANY($1) OR (principal LIKE 'service:%' AND org = ANY($2))
           ORDER BY created_at DESC`,
          [filter.principals, filter.serviceOrgs],
        )
      : await this.pool.query<TokenRow>(`SELECT ${COLUMNS} FROM tokens ORDER BY created_at DESC`);
    return rows.map(toInfo);
  }

  async get(id: string): Promise<TokenInfo | undefined> {
    const { rows } = await this.pool.query<TokenRow>(`SELECT ${COLUMNS} FROM tokens WHERE id = $1`, [id]);
    return rows[0] && toInfo(rows[0]);
  }

  /** Revokes a token: it stops working at once. Idempotent. Returns it, or undefined when there is no such token. */
  async revoke(id: string, client: Queryable = this.pool): Promise<TokenInfo | undefined> {
    const { rows } = await client.query<TokenRow>(
      `UPDATE tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
      [id],
    );
    return rows[0] && toInfo(rows[0]);
  }

  /** Revokes every token of a principal (a user who is removed), or every service token of an org. */
  async revokeAll(filter: { principal: string } | { serviceOrg: string }, client: Queryable = this.pool) {
    if ('principal' in filter) {
      await client.query('UPDATE tokens SET revoked_at = now() WHERE principal = $1 AND revoked_at IS NULL', [
        filter.principal,
      ]);
    } else {
      await client.query(
        `UPDATE tokens SET revoked_at = now() WHERE principal LIKE 'service:%' AND org = $1 AND revoked_at IS NULL`,
        [filter.serviceOrg],
      );
    }
  }

  /** Takes a deleted project out of the tokens narrowed to it (one narrowed to nothing else then reaches no project). */
  async forgetProject(org: string, project: string, client: Queryable = this.pool): Promise<void> {
    await client.query(
      'UPDATE tokens SET projects = array_remove(projects, $2) WHERE org = $1 AND $2 = ANY (projects)',
      [org, project],
    );
  }

  async existsFor(principal: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'SELECT 1 FROM tokens WHERE principal = $1 AND revoked_at IS NULL',
      [principal],
    );
    return (rowCount ?? 0) > 0;
  }
}

/** Some tokens: those of these principals, and the service tokens of these orgs. */
export interface TokenScope {
  principals: string[];
  serviceOrgs: string[];
}

/** Whether a token is in a scope (undefined: every token), as TokenStore.list(scope) selects. */
export function inTokenScope(token: TokenInfo, scope: TokenScope | undefined): boolean {
  if (!scope) return true;
  if (scope.principals.includes(token.principal)) return true;
  return (
    token.principal.startsWith('service:') && token.org !== null && scope.serviceOrgs.includes(token.org)
  );
}

interface TokenRow {
  id: string;
  name: string;
  prefix: string;
  principal: string;
  role: string;
  org: string | null;
  projects: string[] | null;
  created_by: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

function toInfo(r: TokenRow): TokenInfo {
  return {
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    principal: r.principal,
    role: r.role,
    org: r.org,
    projects: r.projects,
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
    expiresAt: r.expires_at?.toISOString() ?? null,
    revokedAt: r.revoked_at?.toISOString() ?? null,
    lastUsedAt: r.last_used_at?.toISOString() ?? null,
  };
}

const COLUMNS =
  'id, name, prefix, principal, role, org, projects, created_by, created_at, expires_at, revoked_at, last_used_at';

export function principalKind(id: string): Principal['kind'] {
  if (id.startsWith('operator:')) return 'operator';
  if (id.startsWith('service:')) return 'service';
  if (id.startsWith('agent:')) return 'agent';
  return 'user';
}

function hash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Uniform random letters and digits (rejection sampling, no modulo bias): one word to double-click. */
function randomAlphanumeric(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length)) {
      if (byte < 248 && out.length < length) out += ALPHANUMERIC[byte % 62];
    }
  }
  return out;
}
