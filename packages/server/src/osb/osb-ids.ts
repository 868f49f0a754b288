import { createHash } from 'node:crypto';

/** The namespace of Kumo's OSB ids (UUIDv5, RFC 9562): the same names give the same ids on every Kumo. */
const NAMESPACE = 'b6f3c1de-4a1e-5c3b-9d0e-6b756d6f2e64';

/** A name-based (SHA-1, version 5) UUID of `name` in `namespace`. Pure. */
export function uuidV5(name: string, namespace = NAMESPACE): string {
  const bytes = createHash('sha1')
    .update(Buffer.from(namespace.replace(/-/g, ''), 'hex'))
    .update(name, 'utf8')
    .digest()
    .subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The OSB service id of an engine: stable for its name. */
export const serviceIdOf = (engine: string) => uuidV5(`kumo.dev/engine/${engine}`);

/** The OSB plan id of an engine's plan: stable for the two names. */
export const planIdOf = (engine: string, plan: string) => uuidV5(`kumo.dev/plan/${engine}/${plan}`);

/** A Kumo name (a DNS label) for an OSB id, which may be any string: a prefix and part of its SHA-256. */
function kumoName(prefix: string, id: string): string {
  return `${prefix}-${createHash('sha256').update(id, 'utf8').digest('hex').slice(0, 30)}`;
}

/** The Database a service instance is. */
export const instanceName = (instanceId: string) => kumoName('osb', instanceId);

/** The DatabaseUser a service binding is. */
export const bindingName = (bindingId: string) => kumoName('bind', bindingId);

/** Labels the broker puts on what it creates. */
export const LABELS = {
  service: 'osb.kumo.dev/service-id',
  plan: 'osb.kumo.dev/plan-id',
  instance: 'osb.kumo.dev/instance',
  organization: 'osb.kumo.dev/organization-guid',
  space: 'osb.kumo.dev/space-guid',
  app: 'osb.kumo.dev/app-guid',
} as const;
