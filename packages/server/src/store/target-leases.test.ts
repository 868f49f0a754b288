import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { LeaseHeldError, LeaseLostError } from '../errors.js';
import { SecretBox } from '../secrets/secret-box.js';
import { migratedTestStore } from '../testing/test-store.js';
import { waitFor } from '../testing/wait.js';
import { LeaseStore } from './target-leases.js';

const db = migratedTestStore();
let leases: LeaseStore;
beforeAll(() => {
  leases = new LeaseStore(db.pool, new SecretBox(randomBytes(32)));
});

const LONG = 60_000;
const SHORT = 1000;

/** Takes the lease for `holder` as soon as the one held before it has run out. */
const takeOver = (target: string, holder: string) =>
  waitFor(() => leases.acquire(target, holder, LONG), `${holder} to take over ${target}`, 15_000);

describe('one agent per target', () => {
  it('gives a free target fence 1 and refuses a second agent while that lease runs', async () => {
    const lease = await leases.acquire('alpha', 'agent-1', LONG);
    expect(lease).toMatchObject({ target: 'alpha', holder: 'agent-1', fence: 1 });
    expect(lease.expiresAt.getTime()).toBeGreaterThan(Date.now());

    const second = leases.acquire('alpha', 'agent-2', LONG);
    await expect(second).rejects.toBeInstanceOf(LeaseHeldError);
    await expect(second).rejects.toMatchObject({ holder: 'agent-1' });
    expect(await leases.info('alpha')).toMatchObject({ holder: 'agent-1', fence: 1, expired: false });
  });

  it('lets the same agent, restarted, take its lease back at once with the next fence', async () => {
    const first = await leases.acquire('beta', 'agent-1', LONG);
    const again = await leases.acquire('beta', 'agent-1', LONG);
    expect(again).toMatchObject({ holder: 'agent-1', fence: first.fence + 1 });
    // The old fence is no longer good for writes: the process that held it is gone.
    await expect(leases.check(db.pool, 'beta', first.fence)).rejects.toBeInstanceOf(LeaseLostError);
    await leases.check(db.pool, 'beta', again.fence);
  });

  it('hands an expired lease to another agent with the next fence; the old holder can neither renew nor write', async () => {
    const old = await leases.acquire('gamma', 'agent-1', SHORT);
    const successor = await takeOver('gamma', 'agent-2');
    expect(successor).toMatchObject({ holder: 'agent-2', fence: old.fence + 1 });

    await expect(leases.renew('gamma', 'agent-1', old.fence, LONG)).rejects.toBeInstanceOf(LeaseLostError);
    await expect(leases.check(db.pool, 'gamma', old.fence)).rejects.toBeInstanceOf(LeaseLostError);
    await leases.check(db.pool, 'gamma', successor.fence);
    // The successor's lease is untouched by the old holder's attempts.
    expect(await leases.info('gamma')).toMatchObject({ holder: 'agent-2', fence: successor.fence });
  });

  it('renews the holder’s own lease under the same fence', async () => {
    const lease = await leases.acquire('delta', 'agent-1', SHORT);
    const renewed = await leases.renew('delta', 'agent-1', lease.fence, LONG);
    expect(renewed.fence).toBe(lease.fence);
    expect(renewed.expiresAt.getTime()).toBeGreaterThan(lease.expiresAt.getTime());
    await expect(leases.acquire('delta', 'agent-2', LONG)).rejects.toBeInstanceOf(LeaseHeldError);
  });

  it('makes a released lease takeable at once, and no longer good for writes', async () => {
    const lease = await leases.acquire('epsilon', 'agent-1', LONG);
    await leases.release('epsilon', 'agent-1', lease.fence);
    await expect(leases.check(db.pool, 'epsilon', lease.fence)).rejects.toBeInstanceOf(LeaseLostError);
    const next = await leases.acquire('epsilon', 'agent-2', LONG);
    expect(next).toMatchObject({ holder: 'agent-2', fence: lease.fence + 1 });
  });

  it('ignores a release by an agent that no longer holds the lease', async () => {
    const old = await leases.acquire('zeta', 'agent-1', LONG);
    const current = await leases.acquire('zeta', 'agent-1', LONG);
    await leases.release('zeta', 'agent-1', old.fence);
    await leases.check(db.pool, 'zeta', current.fence);
    await expect(leases.acquire('zeta', 'agent-2', LONG)).rejects.toBeInstanceOf(LeaseHeldError);
  });
});

describe('the agent’s gateway', () => {
  it('is known only while the lease runs, and its secret is stored sealed', async () => {
    const secret = `gateway-secret-${randomBytes(16).toString('hex')}`;
    const url = 'http://10.0.0.7:7071';
    const lease = await leases.acquire('eta', 'agent-1', LONG, { url, secret });
    expect(await leases.gateway('eta')).toEqual({ holder: 'agent-1', url, secret });
    expect((await leases.info('eta'))?.gatewayUrl).toBe(url);
    expect(JSON.stringify(await leases.all())).not.toContain(secret);

    const { rows } = await db.pool.query<{ gateway_secret: Buffer }>(
      'SELECT gateway_secret FROM target_leases WHERE target = $1',
      ['eta'],
    );
    expect(rows[0]!.gateway_secret.length).toBeGreaterThan(0);
    expect(rows[0]!.gateway_secret.includes(Buffer.from(secret))).toBe(false);

    await leases.release('eta', 'agent-1', lease.fence);
    expect(await leases.gateway('eta')).toBeUndefined();
  });

  it('is gone once the lease expires', async () => {
    await leases.acquire('theta', 'agent-1', SHORT, { url: 'http://h:1', secret: 'x'.repeat(32) });
    await waitFor(
      async () => ((await leases.gateway('theta')) === undefined ? true : undefined),
      'the gateway of an expired lease to be forgotten',
      15_000,
    );
    expect((await leases.info('theta'))?.expired).toBe(true);
  });

  it('is that of the new holder after a takeover, and none when it announces none', async () => {
    await leases.acquire('iota', 'agent-1', SHORT, { url: 'http://old:1', secret: 'o'.repeat(32) });
    await takeOver('iota', 'agent-2');
    expect(await leases.gateway('iota')).toBeUndefined();
  });
});
