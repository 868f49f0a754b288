import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import type { backupKind } from '@kumo/api';
import type { InstanceSpec } from '../drivers/driver.js';
import type { EngineCatalog } from '../engines/engine-catalog.js';

/** Instances that verifications restore into are named by it and their backup's uid. */
export const SCRATCH_PREFIX = 'scratch-';

/** The scratch instance a verification of the backup restores into. */
export function scratchSpec(
  catalog: EngineCatalog,
  backupUid: string,
  status: z.infer<typeof backupKind.status>,
): InstanceSpec {
  const engine = status.engine ?? '';
  return {
    uid: `${SCRATCH_PREFIX}${backupUid}`,
    name: 'verify',
    engine,
    version: status.version ?? '',
    // The database's own plan, so the measured restore time predicts a real restore's.
    plan: catalog.plan(engine, status.plan ?? 'small') ?? catalog.plan(engine, 'small')!,
    storageGB: 1,
    parameters: {},
    acl: [],
    stopped: false,
    credentials: { username: 'verify', password: randomBytes(18).toString('base64url'), version: 1 },
  };
}
