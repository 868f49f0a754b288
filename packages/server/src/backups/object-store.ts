import type { Readable } from 'node:stream';

/** What a completed upload stored: measured by Kumo while it streamed, and the store's own tag for it. */
export interface StoredObject {
  key: string;
  size: number;
  /** SHA-256 of the bytes, hex. */
  sha256: string;
  /** The tag the store reports for these bytes (S3: the ETag; filesystem: the SHA-256). */
  etag: string;
}

/** An object being written by another process through a file descriptor (see ObjectStore.openLocal). */
export interface LocalUpload {
  readonly fd: number;
  /**
   * Makes the written bytes the object under its key, durably, and measures its size and SHA-256
   * by reading the stored object back: the result is also the read-back check.
   */
  commit(): Promise<StoredObject>;
  /** Forgets what was written. */
  abort(): Promise<void>;
}

/** What the store says it holds now. */
export interface ObjectInfo {
  size: number;
  etag: string;
}

/** A failure of the store itself (unreachable, refused, full); its message names no secret. */
export class ObjectStoreError extends Error {}

/**
 * Where backups live. Two implementations pass the same contract (object-store-contract.ts): the
 * filesystem store under the data directory (the default) and an S3 store for any S3-compatible
 * service. Keys are relative paths of letters, digits, dots, dashes, underscores and slashes.
 */
export interface ObjectStore {
  /** For messages and status: the kind and location, never credentials. */
  readonly description: string;
  /** Streams body into key (replacing it); resolves once the store has all of it. */
  put(key: string, body: AsyncIterable<Uint8Array>): Promise<StoredObject>;
  /**
   * Stores with local files only: a file a dump tool writes straight into, with no copy through
   * Kumo. Nothing is under key until commit; abort removes what was written.
   */
  openLocal?(key: string): Promise<LocalUpload>;
  /** The object's size and tag as the store reports them now, or undefined when it is not there. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** The object's bytes. Throws ObjectStoreError when it is not there. */
  get(key: string): Promise<Readable>;
  /**
   * Removes key and whatever interrupted uploads of exactly that key left behind (temporary files;
   * unfinished multipart uploads), never an upload this store has in flight; nothing happens when
   * none is there. So a backup retaken under the same key after a restart leaves no trace of the
   * one that was interrupted. Idempotent; throws ObjectStoreError when the store fails.
   */
  delete(key: string): Promise<void>;
  /** Keys under prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /**
   * Removes what interrupted uploads left behind (Kumo stopped mid-backup): temporary files and
   * unfinished multipart uploads last written before `before`. Never an object, never an upload
   * this store has in flight. Resolves with how many it removed.
   */
  sweep(before: Date): Promise<number>;
}

const KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** Throws unless key is a safe relative object key (no "..", no leading slash). */
export function checkKey(key: string): void {
  if (!KEY.test(key) || key.split('/').some((part) => part === '..' || part === '.')) {
    throw new ObjectStoreError(`Invalid object key "${key}".`);
  }
}
