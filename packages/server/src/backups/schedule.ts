import type { FieldError } from '@kumo/api';
import { Cron } from 'croner';

export interface BackupPolicy {
  schedule: string;
  timezone: string;
  keepLast: number;
  keepDays?: number;
  /** Verify each scheduled backup once it succeeded. */
  verify?: boolean;
}

/** Field errors of a backup policy: a cron expression croner accepts, and a real time zone. */
export function checkPolicy(policy: BackupPolicy | undefined): FieldError[] {
  if (!policy) return [];
  const errors: FieldError[] = [];
  try {
    new Intl.DateTimeFormat('en', { timeZone: policy.timezone });
  } catch {
    errors.push({
      field: 'spec.backupPolicy.timezone',
      message: `"${policy.timezone}" is not an IANA time zone (e.g. Europe/Berlin)`,
    });
    return errors;
  }
  if (policy.schedule.trim().split(/\s+/).length !== 5) {
    errors.push({
      field: 'spec.backupPolicy.schedule',
      message: 'must have 5 fields: minute hour day month weekday',
    });
    return errors;
  }
  try {
    new Cron(policy.schedule, { timezone: policy.timezone, paused: true });
  } catch (err) {
    errors.push({
      field: 'spec.backupPolicy.schedule',
      message: `is not a cron expression: ${(err as Error).message}`,
    });
  }
  return errors;
}

/**
 * The latest scheduled time after `last` and at or before `now`, or undefined when none has come.
 * After downtime this is one slot, the latest: missed runs are not made up in a burst.
 */
export function dueSlot(policy: BackupPolicy, last: Date, now: Date): Date | undefined {
  const cron = new Cron(policy.schedule, { timezone: policy.timezone, paused: true });
  let due: Date | undefined;
  let next = cron.nextRun(last);
  for (let i = 0; next && next.getTime() <= now.getTime() && i < 100_000; i++) {
    due = next;
    next = cron.nextRun(next);
  }
  return due;
}
