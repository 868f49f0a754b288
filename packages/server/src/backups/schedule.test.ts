import { describe, expect, it } from 'vitest';
import { checkPolicy, dueSlot } from './schedule.js';

const policy = (schedule: string, timezone = 'UTC') => ({ schedule, timezone, keepLast: 7 });

describe('backup schedules', () => {
  it('is due once, for the latest slot only, however many were missed', () => {
    const last = new Date('2026-11-01T00:00:00Z');
    const now = new Date('2026-11-05T12:00:00Z');
    expect(dueSlot(policy('0 3 * * *'), last, now)?.toISOString()).toBe('2026-11-05T03:00:00.000Z');
    expect(dueSlot(policy('0 3 * * *'), new Date('2026-11-05T03:00:00Z'), now)).toBeUndefined();
  });

  it('follows the time zone of the policy, across daylight saving time', () => {
    const berlin = policy('0 3 * * *', 'Europe/Berlin');
    // Winter (CET, UTC+1) and summer (CEST, UTC+2).
    expect(
      dueSlot(berlin, new Date('2026-11-21T12:00:00Z'), new Date('2026-11-22T12:00:00Z'))?.toISOString(),
    ).toBe('2026-11-22T02:00:00.000Z');
    expect(
      dueSlot(berlin, new Date('2026-07-01T12:00:00Z'), new Date('2026-07-02T12:00:00Z'))?.toISOString(),
    ).toBe('2026-07-02T01:00:00.000Z');
  });

  it('names what is wrong with a policy', () => {
    expect(checkPolicy(policy('0 3 * * *'))).toEqual([]);
    expect(checkPolicy(policy('61 3 * * *'))[0]!.field).toBe('spec.backupPolicy.schedule');
    expect(checkPolicy(policy('0 3 * *'))[0]!.message).toMatch(/5 fields/);
    expect(checkPolicy(policy('0 3 * * *', 'Mars/Olympus'))[0]!.field).toBe('spec.backupPolicy.timezone');
  });
});
