import type { KumoConfig } from '../config.js';
import type { CrashPoints } from '../faults/crash-points.js';
import { FsObjectStore } from './fs-object-store.js';
import type { ObjectStore } from './object-store.js';

/**
 * The object store the configuration names: the filesystem under the data directory, or S3. The
 * AWS SDK is loaded only for S3 (it is most of the server's code and of its start-up time).
 */
export async function openObjectStore(
  config: KumoConfig['backups']['store'],
  crash?: CrashPoints,
): Promise<ObjectStore> {
  if (config.kind === 'filesystem') return new FsObjectStore(config.root);
  const { kind: _kind, ...s3 } = config;
  const { S3ObjectStore } = await import('./s3-object-store.js');
  return new S3ObjectStore(s3, crash);
}
