import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type TestKumo, startTestKumo } from '../testing/test-kumo.js';
import { waitFor } from '../testing/wait.js';

let t: TestKumo;
beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
});
afterAll(() => t?.stop());

const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json();

describe('API tokens', () => {
  it('creates a token whose secret is shown once, lists it without the secret, and revokes it at once', async () => {
    const res = await t.request('/v1/tokens', {
      method: 'POST',
      json: { name: 'ci-deploy', expiresInDays: 30 },
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as any;
    expect(created.token).toMatch(/^kumo_[A-Za-z0-9]{12}_/);
    expect(created.token.startsWith(`kumo_${created.prefix}_`)).toBe(true);
    expect(Date.parse(created.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);

    const own = { headers: { authorization: `Bearer ${created.token}` } };
    expect((await t.request('/v1/orgs', own)).status).toBe(200);
    const listed = (await json(t.request('/v1/tokens'))).items;
    expect(listed.find((x: any) => x.id === created.id)).toMatchObject({
      name: 'ci-deploy',
      revokedAt: null,
    });
    expect(JSON.stringify(listed)).not.toContain(created.token.slice(-43));

    const revoked = await json(t.request(`/v1/tokens/${created.id}`, { method: 'DELETE' }));
    expect(revoked.revokedAt).not.toBeNull();
    expect((await t.request('/v1/orgs', own)).status).toBe(401);
    expect(
      (await t.request('/v1/tokens/00000000-0000-4000-8000-000000000000', { method: 'DELETE' })).status,
    ).toBe(404);
    expect((await t.request('/v1/tokens', { method: 'POST', json: { name: '' } })).status).toBe(422);
  });
});

describe('audit log', () => {
  it('records who created and changed what, and who read credentials, without secrets', async () => {
    await t.request('/v1/orgs', {
      method: 'POST',
      json: { metadata: { name: 'audited' }, spec: {} },
      headers: { 'x-request-id': 'req-audit-1' },
    });
    await t.request('/v1/orgs/audited', { method: 'PATCH', json: { spec: { displayName: 'A' } } });
    const { items } = await json(t.request('/v1/audit?kind=Org&name=audited'));
    expect(items.map((e: any) => e.action)).toEqual(expect.arrayContaining(['create', 'update']));
    const create = items.find((e: any) => e.action === 'create');
    expect(create).toMatchObject({ actor: 'operator:admin', outcome: 'success', requestId: 'req-audit-1' });
    expect(create.tokenId).toMatch(/^[0-9a-f-]{36}$/);
    // (The source address is asserted end to end, against a real `kumo up`: tests/e2e/kumo-up.test.ts.)
    expect((await t.request('/v1/audit?since=yesterday')).status).toBe(422);
  });

  it("leaves out what Kumo itself did when asked, so people's changes stand out", async () => {
    await t.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'quiet' }, spec: {} } });
    const all = await waitFor(async () => {
      const { items } = await json(t.request('/v1/audit?kind=Org&name=quiet'));
      return items.some((e: any) => e.actor.startsWith('system:')) ? items : undefined;
    }, "the org controller's status update in the audit log");
    const { items } = await json(t.request('/v1/audit?kind=Org&name=quiet&system=false'));
    expect(items.map((e: any) => `${e.actor} ${e.action}`)).toEqual(['operator:admin create']);
    expect(all.length).toBeGreaterThan(items.length);
    expect((await t.request('/v1/audit?system=maybe')).status).toBe(422);
  });
});

describe('rate limiting', () => {
  it('answers 429 with Retry-After once a token exceeds its rate, and other tokens are not affected', async () => {
    const limited = await startTestKumo(inject('pg'), { rateLimit: 5 });
    try {
      const second = (await (
        await limited.request('/v1/tokens', { method: 'POST', json: { name: 'second' } })
      ).json()) as any;
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await limited.request('/v1/orgs')).status);
      expect(statuses.slice(0, 9)).toEqual(Array(9).fill(200)); // the rest of a burst of twice the rate
      expect(statuses).toContain(429);
      const refused = await limited.request('/v1/orgs');
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await refused.json()) as any).type).toBe('https://kumo.dev/problems/rate-limited');
      const other = await limited.request('/v1/orgs', {
        headers: { authorization: `Bearer ${second.token}` },
      });
      expect(other.status).toBe(200); // another token has its own budget
      expect((await limited.kumo.app.request('/livez')).status).toBe(200); // health is never limited
    } finally {
      await limited.stop();
    }
  });
});
