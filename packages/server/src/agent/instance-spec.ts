import type { Resource } from '@kumo/api';
import type { z } from 'zod';
import type { databaseKind } from '@kumo/api';
import type { InstanceSpec } from '../drivers/driver.js';
import type { EngineCatalog } from '../engines/engine-catalog.js';
import type { Credentials } from '../secrets/credential-store.js';

type DatabaseSpec = z.infer<typeof databaseKind.spec>;

/** What the driver is asked to run for a database: its spec resolved (plan, live ACL entries). */
export function instanceSpecOf(
  db: Resource,
  catalog: EngineCatalog,
  credentials: Credentials,
  now = Date.now(),
): InstanceSpec {
  const spec = db.spec as DatabaseSpec;
  return {
    uid: db.metadata.uid,
    name: db.metadata.name,
    engine: spec.engine,
    version: spec.version,
    plan: catalog.plan(spec.engine, spec.plan)!,
    storageGB: spec.storageGB,
    parameters: spec.parameters,
    acl: spec.acl.filter((e) => !e.expiresAt || Date.parse(e.expiresAt) > now).map((e) => e.cidr),
    stopped: spec.stopped,
    credentials,
  };
}
