import type { KumoConfig } from '../config.js';
import type { CrashPoints } from '../faults/crash-points.js';
import { FsObjectStore } from './fs-object-store.js';
import type { ObjectStore } from './object-store.js';
import { S3ObjectStore } from './s3-object-store.js';

/** The object store the configuration names: the filesystem under the data directory, or S3. */
export function openObjectStore(config: KumoConfig['backups']['store'], crash?: CrashPoints): ObjectStore {
  if (config.kind === 'filesystem') return new FsObjectStore(config.root);
  const { kind: _kind, ...s3 } = config;
  return new S3ObjectStore(s3, crash);
}
