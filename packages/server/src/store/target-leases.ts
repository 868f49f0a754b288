import type pg from 'pg';
import { LeaseHeldError, LeaseLostError } from '../errors.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { Queryable } from './sql.js';

/** A target's lease as its holder sees it. */
export interface Lease {
  target: string;
  holder: string;
  /** Grows with every new holder and every restart of one; status writes carry it. */
  fence: number;
  expiresAt: Date;
}

/** Where the control plane reaches a target's agent, and what it presents there. */
export interface GatewayAddress {
  url: string;
  secret: string;
}

/** What the control plane knows of a target's lease (no secrets). */
export interface LeaseInfo extends Lease {
  renewedAt: Date;
  /** Whether the lease has run out: its agent missed its renewals (a heartbeat timeout). */
  expired: boolean;
  gatewayUrl: string | null;
}

interface LeaseRow {
  target: string;
  holder: string;
  fence: string;
  renewed_at: Date;
  expires_at: Date;
  gateway_url: string | null;
  expired: boolean;
}

/**
 * One agent per target, through the store: a lease with an expiry and a fencing number. Time is
 * the store's clock (`now()`), never an agent's, so hosts with skewed clocks agree on expiry.
 */
export class LeaseStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly box: SecretBox,
  ) {}

  /** For a check outside a write's transaction (an event). */
  get queryable(): Queryable {
    return this.pool;
  }

  /**
   * Takes the target's lease for `holder`, with the next fence: when it is free, expired, or was
   * the same holder's (the same agent restarted: its data directory lock keeps it one process).
   * Throws LeaseHeldError while another holder's lease runs.
   */
  async acquire(target: string, holder: string, ttlMs: number, gateway?: GatewayAddress): Promise<Lease> {
    const { rows } = await this.pool.query<LeaseRow>(
      `INSERT INTO target_leases AS l (target, holder, fence, acquired_at, renewed_at, expires_at, gateway_url, gateway_secret)
       VALUES ($1, $2, 1, now(), now(), now() + make_interval(secs => $3), $4, $5)
       ON CONFLICT (target) DO UPDATE SET
         holder = EXCLUDED.holder, fence = l.fence + 1, acquired_at = now(), renewed_at = now(),
         expires_at = EXCLUDED.expires_at, gateway_url = EXCLUDED.gateway_url, gateway_secret = EXCLUDED.gateway_secret
       WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
       RETURNING ${COLUMNS}`,
      [target, holder, ttlMs / 1000, gateway?.url ?? null, gateway ? this.box.seal(gateway.secret) : null],
    );
    if (rows[0]) return toLease(rows[0]);
    const current = await this.info(target);
    if (!current) return this.acquire(target, holder, ttlMs, gateway);
    throw new LeaseHeldError(
      `Target ${target} is served by agent ${current.holder} until ${current.expiresAt.toISOString()} unless it renews; this agent waits and takes over when that lease expires.`,
      current.holder,
      current.expiresAt,
    );
  }

  /** Extends the caller's lease. Throws LeaseLostError when it is no longer the caller's. */
  async renew(target: string, holder: string, fence: number, ttlMs: number): Promise<Lease> {
    const { rows } = await this.pool.query<LeaseRow>(
      `UPDATE target_leases SET renewed_at = now(), expires_at = now() + make_interval(secs => $4)
       WHERE target = $1 AND holder = $2 AND fence = $3 RETURNING ${COLUMNS}`,
      [target, holder, fence, ttlMs / 1000],
    );
    if (!rows[0]) throw lost(target, fence);
    return toLease(rows[0]);
  }

  /** Gives the lease up (a clean agent stop), so a successor need not wait for it to expire. */
  async release(target: string, holder: string, fence: number): Promise<void> {
    await this.pool.query(
      'UPDATE target_leases SET expires_at = now() WHERE target = $1 AND holder = $2 AND fence = $3',
      [target, holder, fence],
    );
  }

  /**
   * Refuses a write made under `fence` unless it is the target's current, unexpired one. Called
   * inside the write's transaction: the row lock (FOR SHARE) keeps a takeover from committing in
   * between, so an agent that lost its lease can never write over its successor.
   */
  async check(client: Queryable, target: string, fence: number): Promise<void> {
    const { rows } = await client.query(
      'SELECT 1 FROM target_leases WHERE target = $1 AND fence = $2 AND expires_at > now() FOR SHARE',
      [target, fence],
    );
    if (rows.length === 0) throw lost(target, fence);
  }

  /**
   * Refuses a write unless the target's lease has run out (the health check's "unreachable"),
   * holding the lease row (FOR SHARE) so that an agent taking it over waits for the write and its
   * own first status comes after it, never before.
   */
  async checkExpired(client: Queryable, target: string): Promise<void> {
    const { rows } = await client.query<{ expired: boolean }>(
      'SELECT expires_at <= now() AS expired FROM target_leases WHERE target = $1 FOR SHARE',
      [target],
    );
    if (rows[0] && !rows[0].expired)
      throw new LeaseHeldError(`Target ${target} has an agent again.`, '', new Date());
  }

  async info(target: string): Promise<LeaseInfo | undefined> {
    const { rows } = await this.pool.query<LeaseRow>(
      `SELECT ${COLUMNS} FROM target_leases WHERE target = $1`,
      [target],
    );
    return rows[0] && toInfo(rows[0]);
  }

  async all(): Promise<LeaseInfo[]> {
    const { rows } = await this.pool.query<LeaseRow>(`SELECT ${COLUMNS} FROM target_leases ORDER BY target`);
    return rows.map(toInfo);
  }

  /** The gateway of the target's current agent, or undefined when it has none or its lease ran out. */
  async gateway(target: string): Promise<(GatewayAddress & { holder: string }) | undefined> {
    const { rows } = await this.pool.query<{
      holder: string;
      gateway_url: string | null;
      gateway_secret: Buffer | null;
    }>(
      'SELECT holder, gateway_url, gateway_secret FROM target_leases WHERE target = $1 AND expires_at > now()',
      [target],
    );
    const row = rows[0];
    if (!row?.gateway_url || !row.gateway_secret) return undefined;
    return { holder: row.holder, url: row.gateway_url, secret: this.box.open(row.gateway_secret) };
  }

  /** Forgets a deleted target's lease. */
  async forget(target: string): Promise<void> {
    await this.pool.query('DELETE FROM target_leases WHERE target = $1', [target]);
  }
}

const COLUMNS = 'target, holder, fence, renewed_at, expires_at, gateway_url, expires_at <= now() AS expired';

function toLease(row: LeaseRow): Lease {
  return { target: row.target, holder: row.holder, fence: Number(row.fence), expiresAt: row.expires_at };
}

function toInfo(row: LeaseRow): LeaseInfo {
  return { ...toLease(row), renewedAt: row.renewed_at, expired: row.expired, gatewayUrl: row.gateway_url };
}

function lost(target: string, fence: number): LeaseLostError {
  return new LeaseLostError(
    `The lease of target ${target} under fence ${fence} is no longer current: another agent took over, or it expired. This agent stops acting for the target until it holds the lease again.`,
  );
}
