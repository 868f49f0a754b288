import type { MeterRate } from './usage-recorder.js';

/** What a stored backup accrues while its object is kept: its bytes, every second. */
export function backupRates(backup: { engine: string; bytes: number }): MeterRate[] {
  return [{ meter: 'backup.storage', dimensions: { engine: backup.engine }, perSecond: backup.bytes }];
}
