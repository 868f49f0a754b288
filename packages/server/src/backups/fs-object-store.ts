import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import {
  type LocalUpload,
  type ObjectInfo,
  type ObjectStore,
  ObjectStoreError,
  type StoredObject,
  checkKey,
} from './object-store.js';

/** Marks the temporary file of an upload (`<key>.partial-<uuid>`). */
const PARTIAL = '.partial-';

/** Reads of a stored object when it is hashed back: 64 KiB reads made reading a dump back 3–4× slower. */
const READ_BACK_CHUNK = 1024 * 1024;

/**
 * Objects as files under a directory. A put writes a temporary file, syncs it and renames it into
 * place, so a crash never leaves a half-written object under its key. A dump tool can write that
 * temporary file itself (openLocal), without a copy through Kumo. stat re-reads the file and
 * hashes it: its tag is the SHA-256 of what is on disk now, so a truncated or altered file shows.
 */
export class FsObjectStore implements ObjectStore {
  readonly description: string;
  /** Temporary files of uploads in flight in this process: delete and sweep leave them alone. */
  private readonly inFlight = new Set<string>();

  constructor(private readonly root: string) {
    this.description = `filesystem ${root}`;
  }

  private path(key: string): string {
    checkKey(key);
    // Temporary files are told apart by this mark: no key may carry it.
    if (key.includes(PARTIAL))
      throw new ObjectStoreError(`Invalid object key "${key}": "${PARTIAL}" marks temporary files.`);
    return join(this.root, key);
  }

  async put(key: string, body: AsyncIterable<Uint8Array>): Promise<StoredObject> {
    const partial = await this.openPartial(key);
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of body) {
        hash.update(chunk);
        size += chunk.length;
        await partial.file.write(chunk);
      }
    } catch (err) {
      await partial.abort();
      throw this.failure(key, err);
    }
    await partial.finish();
    const sha256 = hash.digest('hex');
    return { key, size, sha256, etag: sha256 };
  }

  /**
   * The dump tool writes the temporary file itself. commit reads it back while it is synced (both
   * see the same bytes, so the sync's wait is not added to the read's), moves it into place and
   * checks that the placed object has the size read: Kumo saw none of the bytes, so what is stored
   * is what it measures.
   */
  async openLocal(key: string): Promise<LocalUpload> {
    const partial = await this.openPartial(key);
    return {
      fd: partial.file.fd,
      commit: async () => {
        const seen = await partial.finish(() => readBack(partial.path));
        const placed = await stat(this.path(key)).catch(() => undefined);
        if (placed?.size !== seen.size)
          throw new ObjectStoreError(
            `${key} in ${this.description} is ${placed ? `${placed.size} bytes` : 'missing'} after it was placed; ${seen.size} bytes were written.`,
          );
        return { key, size: seen.size, sha256: seen.etag, etag: seen.etag };
      },
      abort: partial.abort,
    };
  }

  /**
   * A temporary file next to key's. finish syncs it (running `alongside` meanwhile) and renames
   * it into place (and syncs the directory), so a crash never leaves a half-written object under
   * its key; abort removes it.
   */
  private async openPartial(key: string) {
    const target = this.path(key);
    const path = `${target}${PARTIAL}${randomUUID()}`;
    // In flight before the file exists, so a delete or sweep meanwhile never takes it for a leftover.
    this.inFlight.add(path);
    let file;
    try {
      await mkdir(dirname(target), { recursive: true });
      file = await open(path, 'wx', 0o600);
    } catch (err) {
      this.inFlight.delete(path);
      throw this.failure(key, err);
    }
    const abort = async () => {
      await file.close().catch(() => undefined);
      await rm(path, { force: true }).catch(() => undefined);
      this.inFlight.delete(path);
    };
    const finish = async <T>(alongside?: () => Promise<T>): Promise<T> => {
      try {
        const [, result] = await Promise.all([file.sync(), alongside?.()]);
        await file.close();
        await rename(path, target);
        this.inFlight.delete(path);
        const dir = await open(dirname(target), 'r');
        await dir.sync().finally(() => dir.close());
        // What an earlier try of this key left (a crash mid-upload) goes now; else the sweep takes it.
        await this.removeLeftovers(target).catch(() => undefined);
        return result as T;
      } catch (err) {
        await abort();
        throw this.failure(key, err);
      }
    };
    return { file, path, finish, abort };
  }

  private failure(key: string, err: unknown): ObjectStoreError {
    if (err instanceof ObjectStoreError) return err;
    return new ObjectStoreError(`Could not write ${key} to ${this.description}: ${(err as Error).message}`, {
      cause: err,
    });
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const path = this.path(key);
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new ObjectStoreError(`Could not read ${key} in ${this.description}: ${err.message}`);
    });
    if (!info) return undefined;
    return readBack(path);
  }

  async get(key: string): Promise<Readable> {
    const path = this.path(key);
    const handle = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      throw new ObjectStoreError(
        err.code === 'ENOENT'
          ? `${key} is not in ${this.description}.`
          : `Could not read ${key}: ${err.message}`,
      );
    });
    return handle.createReadStream();
  }

  /** Removes the file of key and the temporary files next to it that no upload here is writing. */
  async delete(key: string): Promise<void> {
    const target = this.path(key);
    try {
      await rm(target, { force: true });
      await this.removeLeftovers(target);
    } catch (err) {
      const message = `Could not delete ${key} in ${this.description}: ${(err as Error).message}`;
      throw new ObjectStoreError(message, { cause: err });
    }
  }

  async list(prefix: string): Promise<string[]> {
    const found: string[] = [];
    for await (const path of this.files()) if (!path.includes(PARTIAL)) found.push(relative(this.root, path));
    return found.filter((k) => k.startsWith(prefix)).sort();
  }

  /** Removes the temporary files of uploads of target that no upload here is writing. */
  private async removeLeftovers(target: string): Promise<void> {
    const dir = dirname(target);
    const leftover = `${basename(target)}${PARTIAL}`;
    const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    for (const name of names) {
      const path = join(dir, name);
      if (name.startsWith(leftover) && !this.inFlight.has(path)) await rm(path, { force: true });
    }
  }

  async sweep(before: Date): Promise<number> {
    let removed = 0;
    for await (const path of this.files()) {
      if (!path.includes(PARTIAL) || this.inFlight.has(path)) continue;
      const info = await stat(path).catch(() => undefined);
      if (info && info.mtime < before) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** Every file under the root (none when the root does not exist yet). */
  private async *files(dir = this.root): AsyncGenerator<string> {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) yield* this.files(path);
      else yield path;
    }
  }
}

/** A file's size and tag as read from disk now: its length and the SHA-256 of its bytes. */
async function readBack(path: string): Promise<ObjectInfo> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: READ_BACK_CHUNK })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, etag: hash.digest('hex') };
}
