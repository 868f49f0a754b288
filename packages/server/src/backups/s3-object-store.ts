import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type MultipartUpload,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { type CrashPoints, NO_CRASH_POINTS } from '../faults/crash-points.js';
import {
  type ObjectInfo,
  type ObjectStore,
  ObjectStoreError,
  type StoredObject,
  checkKey,
} from './object-store.js';

export interface S3StoreConfig {
  /** e.g. https://s3.eu-central-1.amazonaws.com or http://127.0.0.1:8080 */
  endpoint: string;
  region: string;
  bucket: string;
  /** Keys are stored under this prefix (no leading or trailing slash needed). */
  prefix: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Address buckets as endpoint/bucket rather than bucket.endpoint (most self-hosted servers). */
  forcePathStyle: boolean;
  /** Multipart part size in bytes (S3's minimum is 5 MiB). Default 8 MiB. */
  partSize?: number;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

/**
 * Objects in any S3-compatible service. Uploads go in parts of partSize, each sent with its MD5 so
 * the service checks what it received; the resulting ETag (the MD5 of a single part, or the MD5 of
 * the parts' MD5s with "-N") is computed here too, so stat() can prove the stored object is the one
 * that was sent. Checksums beyond MD5 (newer SDK defaults) are sent only where a request needs them:
 * not every S3-compatible server accepts them.
 */
export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly partSize: number;
  /** Multipart uploads in flight in this process: delete and sweep leave them alone. */
  private readonly inFlight = new Set<string>();
  /**
   * CreateMultipartUpload requests not answered yet: their uploads may already be listed while their
   * ids are not in inFlight, so delete waits for them before it judges an upload a leftover.
   */
  private readonly creating = new Set<Promise<unknown>>();

  constructor(
    private readonly config: S3StoreConfig,
    /** Test-only fault injection; default: none. */
    private readonly crash: CrashPoints = NO_CRASH_POINTS,
  ) {
    this.description = `s3 ${config.endpoint} bucket ${config.bucket}${config.prefix ? ` prefix ${config.prefix}` : ''}`;
    this.partSize = config.partSize ?? DEFAULT_PART_SIZE;
    this.client = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      // A store that stops answering fails the request instead of holding it (and the dump
      // feeding it) forever: 10 s to connect, 60 s without a byte moving.
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000 },
    });
  }

  private objectKey(key: string): string {
    checkKey(key);
    return this.keyPrefix() + key;
  }

  /** What every key of this store starts with in the bucket: the prefix and a slash, or nothing. */
  private keyPrefix(): string {
    const prefix = this.config.prefix.replace(/^\/+|\/+$/g, '');
    return prefix ? `${prefix}/` : '';
  }

  async put(key: string, body: AsyncIterable<Uint8Array>): Promise<StoredObject> {
    const Key = this.objectKey(key);
    const Bucket = this.config.bucket;
    const sha = createHash('sha256');
    let size = 0;
    const partMd5s: Buffer[] = [];
    let uploadId: string | undefined;
    const parts: Array<{ PartNumber: number; ETag: string }> = [];
    let pending: Buffer[] = [];
    let pendingBytes = 0;

    const sendPart = async (data: Buffer) => {
      if (!uploadId) uploadId = await this.createUpload(Key);
      const md5 = createHash('md5').update(data).digest();
      const PartNumber = parts.length + 1;
      const res = await this.client.send(
        new UploadPartCommand({
          Bucket,
          Key,
          UploadId: uploadId,
          PartNumber,
          Body: data,
          ContentMD5: md5.toString('base64'),
        }),
      );
      partMd5s.push(md5);
      parts.push({ PartNumber, ETag: res.ETag! });
      this.crash.reach('s3.part-uploaded');
    };

    try {
      for await (const chunk of body) {
        sha.update(chunk);
        size += chunk.length;
        pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        pendingBytes += chunk.length;
        while (pendingBytes >= this.partSize) {
          const all = Buffer.concat(pending);
          await sendPart(all.subarray(0, this.partSize));
          pending = [all.subarray(this.partSize)];
          pendingBytes = all.length - this.partSize;
        }
      }
      const rest = Buffer.concat(pending);
      let etag: string;
      if (!uploadId) {
        const md5 = createHash('md5').update(rest).digest();
        await this.client.send(
          new PutObjectCommand({ Bucket, Key, Body: rest, ContentMD5: md5.toString('base64') }),
        );
        etag = md5.toString('hex');
      } else {
        if (rest.length > 0) await sendPart(rest);
        await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
        etag = `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${parts.length}`;
      }
      return { key, size, sha256: sha.digest('hex'), etag };
    } catch (err) {
      if (uploadId) {
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }))
          .catch(() => undefined);
      }
      throw this.failure(`write ${key}`, err);
    } finally {
      if (uploadId) this.inFlight.delete(uploadId);
    }
  }

  /** Begins a multipart upload of Key, in flight from the moment the service names it. */
  private async createUpload(Key: string): Promise<string> {
    const creating = this.client
      .send(new CreateMultipartUploadCommand({ Bucket: this.config.bucket, Key }))
      .then(({ UploadId }) => {
        this.inFlight.add(UploadId!);
        return UploadId!;
      });
    this.creating.add(creating);
    try {
      return await creating;
    } finally {
      this.creating.delete(creating);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.config.bucket, Key: this.objectKey(key) }),
      );
      return { size: head.ContentLength ?? 0, etag: (head.ETag ?? '').replace(/"/g, '') };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.failure(`read ${key}`, err);
    }
  }

  async get(key: string): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.config.bucket, Key: this.objectKey(key) }),
      );
      return res.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new ObjectStoreError(`${key} is not in ${this.description}.`);
      throw this.failure(`read ${key}`, err);
    }
  }

  /** Deletes the object of key and aborts the unfinished multipart uploads of key not in flight here. */
  async delete(key: string): Promise<void> {
    const Bucket = this.config.bucket;
    const Key = this.objectKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket, Key }));
    } catch (err) {
      if (!isNotFound(err)) throw this.failure(`delete ${key}`, err);
    }
    try {
      for await (const upload of this.uploads(Key)) {
        if (upload.Key !== Key || !upload.UploadId) continue;
        await Promise.allSettled(this.creating);
        if (this.inFlight.has(upload.UploadId)) continue;
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: upload.UploadId }))
          .catch((err: unknown) => {
            if (!isNotFound(err)) throw err; // NoSuchUpload: completed or aborted meanwhile
          });
      }
    } catch (err) {
      throw this.failure(`remove unfinished uploads of ${key}`, err);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const base = this.keyPrefix();
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.config.bucket,
            Prefix: base + prefix,
            ContinuationToken: token,
          }),
        );
        for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key.slice(base.length));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.failure(`list ${prefix}`, err);
    }
    return keys.sort();
  }

  async sweep(before: Date): Promise<number> {
    const Bucket = this.config.bucket;
    const base = this.keyPrefix();
    let removed = 0;
    try {
      for await (const { Key, UploadId, Initiated } of this.uploads(base)) {
        if (!Key || !UploadId || this.inFlight.has(UploadId) || !Initiated || Initiated >= before) continue;
        await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
        removed++;
      }
    } catch (err) {
      throw this.failure('remove unfinished uploads', err);
    }
    return removed;
  }

  /** The unfinished multipart uploads of keys starting with Prefix (a bucket key), page by page. */
  private async *uploads(Prefix: string): AsyncGenerator<MultipartUpload> {
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.config.bucket, Prefix, ...markers }),
      );
      yield* page.Uploads ?? [];
      if (!page.IsTruncated) return;
      markers = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
    }
  }

  private failure(what: string, err: unknown): ObjectStoreError {
    const e = err as {
      name?: string;
      message?: string;
      code?: string;
      $metadata?: { httpStatusCode?: number };
    };
    const status = e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : '';
    return new ObjectStoreError(
      `Could not ${what} in ${this.description}: ${e.name ?? e.code ?? 'error'}${status}: ${e.message ?? ''}`.trim(),
      {
        cause: err,
      },
    );
  }

  /** Stops the client's sockets. */
  close(): void {
    this.client.destroy();
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}
