import { describe, expect, it } from 'vitest';
import { migratedTestStore } from '../testing/test-store.js';
import { pruneSystemAudit, queryAudit, recordAudit } from './audit-log.js';

const db = migratedTestStore();

describe('the audit log', () => {
  it("forgets Kumo's own old entries in batches, and keeps people's however old", async () => {
    const entry = (actor: string, name: string) =>
      recordAudit(db.pool, { actor }, { action: 'update-status', kind: 'Target', name, org: null });
    for (let i = 0; i < 3; i++) await entry('system:agent:local', `old-${i}`);
    await entry('system:controllers', 'recent');
    await entry('user:alice', 'old-by-alice');
    await db.pool.query("UPDATE audit_log SET at = now() - interval '8 days' WHERE name LIKE 'old-%'");

    const week = 7 * 86_400_000;
    expect(await pruneSystemAudit(db.pool, week, 2)).toBe(2);
    expect(await pruneSystemAudit(db.pool, week, 2)).toBe(1);
    expect(await pruneSystemAudit(db.pool, week, 2)).toBe(0);
    const left = await queryAudit(db.pool, { kind: 'Target', limit: 100 });
    expect(left.map((e) => `${e.actor} ${e.name}`).sort()).toEqual([
      'system:controllers recent',
      'user:alice old-by-alice',
    ]);
  });
});
