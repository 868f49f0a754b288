import type { MeterRate } from './usage-recorder.js';

/** What the agent saw of a database at one moment. */
export interface DatabaseState {
  running: boolean;
  engine: string;
  plan: string;
  storageGB: number;
  /** As last measured; absent when it could not be measured (then nothing is counted for it). */
  usedBytes?: number;
}

/**
 * What a database accrues while it stays so: runtime per plan while its server runs, provisioned
 * storage while it exists (running or stopped), and the storage it uses as far as it was measured.
 */
export function databaseRates(state: DatabaseState): MeterRate[] {
  const engine = { engine: state.engine };
  return [
    ...(state.running
      ? [{ meter: 'database.runtime' as const, dimensions: { ...engine, plan: state.plan }, perSecond: 1 }]
      : []),
    { meter: 'database.storage', dimensions: engine, perSecond: state.storageGB },
    ...(state.usedBytes !== undefined
      ? [{ meter: 'database.storage-used' as const, dimensions: engine, perSecond: state.usedBytes }]
      : []),
  ];
}
