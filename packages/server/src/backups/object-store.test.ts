import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SwiftS3, startSwiftS3 } from '../testing/swift-s3.js';
import { FsObjectStore } from './fs-object-store.js';
import { ObjectStoreError } from './object-store.js';
import { runObjectStoreContract } from './object-store-contract.js';
import { S3ObjectStore, type S3StoreConfig } from './s3-object-store.js';

let root: string;
let swift: SwiftS3;
const stores: S3ObjectStore[] = [];
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-objects-'));
  swift = await startSwiftS3();
  await swift.createBucket('kumo-backups');
}, 150_000);
afterAll(async () => {
  for (const s of stores) s.close();
  await swift?.stop();
  await rm(root, { recursive: true, force: true });
});

runObjectStoreContract({
  name: 'filesystem',
  store: () => new FsObjectStore(root),
  corrupt: async (key) => writeFile(join(root, key), 'rotten'),
  broken: () => {
    const file = join(root, 'not-a-directory');
    void writeFile(file, '');
    return new FsObjectStore(join(file, 'below'));
  },
});

function s3(overrides: Partial<S3StoreConfig> = {}): S3ObjectStore {
  const store = new S3ObjectStore({
    endpoint: swift.endpoint,
    region: swift.region,
    bucket: 'kumo-backups',
    prefix: 'contract',
    accessKeyId: swift.accessKeyId,
    secretAccessKey: swift.secretAccessKey,
    forcePathStyle: true,
    partSize: 5 * 1024 * 1024,
    ...overrides,
  });
  stores.push(store);
  return store;
}

// A real S3-compatible server that checks SigV4 signatures: OpenStack Swift with s3api.
runObjectStoreContract({
  name: 's3 (OpenStack Swift s3api)',
  store: () => s3(),
  corrupt: async (key) =>
    void (await s3().put(
      key,
      (async function* () {
        yield Buffer.from('rotten');
      })(),
    )),
  broken: () => s3({ endpoint: 'http://127.0.0.1:9' }),
});

describe('the S3 store against a server that checks signatures', () => {
  it('is refused with a wrong secret, and the error names no secret', async () => {
    const wrong = s3({ secretAccessKey: 'not-the-secret' });
    const err = await wrong.stat('anything').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ObjectStoreError);
    expect(String((err as Error).message)).toMatch(/403|SignatureDoesNotMatch|AccessDenied/);
    expect(String((err as Error).message)).not.toContain('not-the-secret');
    const put = wrong.put(
      'x',
      (async function* () {
        yield Buffer.from('x');
      })(),
    );
    await expect(put).rejects.toBeInstanceOf(ObjectStoreError);
  });

  it('keeps objects apart by prefix', async () => {
    await s3({ prefix: 'one' }).put(
      'k',
      (async function* () {
        yield Buffer.from('1');
      })(),
    );
    expect(await s3({ prefix: 'two' }).stat('k')).toBeUndefined();
    expect(await s3({ prefix: 'one' }).list('')).toEqual(['k']);
  });
});

describe('the filesystem store written by another process', () => {
  it('makes what was written through the file descriptor the object only on commit', async () => {
    const store = new FsObjectStore(root);
    const upload = await store.openLocal('direct/dump');
    // As a dump tool would: its standard output is the store's file.
    const child = spawn('sh', ['-c', 'printf hello; printf " world"'], {
      stdio: ['ignore', upload.fd, 'ignore'],
    });
    await once(child, 'exit');
    expect(await store.stat('direct/dump')).toBeUndefined(); // nothing under the key before commit
    const stored = await upload.commit();
    expect(stored).toEqual({
      key: 'direct/dump',
      size: 11,
      sha256: createHash('sha256').update('hello world').digest('hex'),
      etag: stored.sha256,
    });
    expect(await store.stat('direct/dump')).toEqual({ size: 11, etag: stored.sha256 });
    expect(Buffer.concat(await (await store.get('direct/dump')).toArray()).toString()).toBe('hello world');

    const dropped = await store.openLocal('direct/dropped');
    await dropped.abort();
    expect(await store.list('direct')).toEqual(['direct/dump']);
    expect(await readdir(join(root, 'direct'))).toEqual(['dump']); // and no temporary file
  });

  it('removes what an interrupted earlier try of a key left once the key is written again', async () => {
    const store = new FsObjectStore(root);
    await store.put(
      'retried/dump',
      (async function* () {
        yield Buffer.from('first');
      })(),
    );
    // A crash mid-upload leaves the temporary file of that try next to the key.
    await writeFile(join(root, 'retried', 'dump.partial-crashed'), 'half');
    const again = await store.openLocal('retried/dump');
    await writeFile(join(root, 'retried', 'other.partial-crashed'), 'not this key');
    expect((await readdir(join(root, 'retried'))).length).toBe(4); // in flight: its own temporary file
    await again.commit();
    expect((await readdir(join(root, 'retried'))).sort()).toEqual(['dump', 'other.partial-crashed']);
  });
});
