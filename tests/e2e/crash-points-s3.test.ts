import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect } from 'vitest';
import { type SwiftS3, startSwiftS3 } from '../../packages/server/src/testing/swift-s3.js';
import { type Scenario, runCrashSuite } from '../support/crash-harness.js';
import {
  CRASH_POINTS,
  ENGINE,
  backupDone,
  createDb,
  phase,
  project,
  seedManyRows,
} from '../support/crash-scenarios.js';

// The crash-point suite's backup into an S3-compatible store (OpenStack Swift with s3api, real
// SigV4 checks): Kumo killed at every point of the backup, multipart upload included, restarted;
// the bucket then holds the backup exactly once, and no unfinished multipart upload.
const BUCKET = 'kumo-crash';
let swift: SwiftS3;
let s3: S3Client;

beforeAll(async () => {
  swift = await startSwiftS3();
  await swift.createBucket(BUCKET);
  s3 = new S3Client({
    endpoint: swift.endpoint,
    region: swift.region,
    forcePathStyle: true,
    credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey },
  });
}, 120_000);
afterAll(async () => {
  s3?.destroy();
  await swift?.stop();
});

const intoS3: Scenario = {
  name: 'take a backup into S3, in multipart parts',
  setup: async (api) => {
    await project(api);
    await createDb(api, 'orders', ENGINE.postgres);
    await phase(api, 'orders', 'Ready');
    await seedManyRows(api, 'orders');
  },
  act: async (api) => {
    const { status } = await api.call('POST', '/v1/projects/shop/backups', {
      metadata: { name: 'nightly' },
      spec: { database: 'orders' },
    });
    if (status >= 300) throw new Error(`backup create answered ${status}`);
  },
  env: (ws) => ({
    KUMO_BACKUP_S3_PART_SIZE_MB: '5',
    KUMO_BACKUP_S3_ENDPOINT: swift.endpoint,
    KUMO_BACKUP_S3_BUCKET: BUCKET,
    KUMO_BACKUP_S3_PREFIX: ws.id,
    KUMO_BACKUP_S3_ACCESS_KEY_ID: swift.accessKeyId,
    KUMO_BACKUP_S3_SECRET_ACCESS_KEY: swift.secretAccessKey,
  }),
  converged: async (api, ws) => {
    const done = await backupDone(api, 'nightly');
    expect(done.status.phase, JSON.stringify(done.status)).toBe('Succeeded');
    const prefix = `${ws.id}/`;
    const objects = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    expect((objects.Contents ?? []).map((o) => o.Key).sort()).toEqual([
      prefix + done.status.object.key,
      `${prefix}${done.status.object.key}.manifest.json`,
    ]);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
    expect(uploads.Uploads ?? [], 'unfinished multipart uploads').toEqual([]);
    const { body: db } = await api.call('GET', '/v1/projects/shop/databases/orders');
    return { liveInstances: [db.metadata.uid], runningServers: 1 };
  },
};

runCrashSuite([intoS3], [...CRASH_POINTS.s3, 'backup.dump-started', 'backup.object-stored'], '32750-32767');
