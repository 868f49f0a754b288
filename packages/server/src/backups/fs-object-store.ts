import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import {
  type ObjectInfo,
  type ObjectStore,
  ObjectStoreError,
  type StoredObject,
  checkKey,
} from './object-store.js';

/**
 * Objects as files under a directory. A put writes a temporary file, syncs it and renames it into
 * place, so a crash never leaves a half-written object under its key. stat re-reads the file and
 * hashes it: its tag is the SHA-256 of what is on disk now, so a truncated or altered file shows.
 */
export class FsObjectStore implements ObjectStore {
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `filesystem ${root}`;
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, key);
  }

  async put(key: string, body: AsyncIterable<Uint8Array>): Promise<StoredObject> {
    const target = this.path(key);
    const partial = `${target}.partial-${randomUUID()}`;
    try {
      await mkdir(dirname(target), { recursive: true });
      const file = await open(partial, 'wx', 0o600);
      const hash = createHash('sha256');
      let size = 0;
      try {
        for await (const chunk of body) {
          hash.update(chunk);
          size += chunk.length;
          await file.write(chunk);
        }
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(partial, target);
      const dir = await open(dirname(target), 'r');
      await dir.sync().finally(() => dir.close());
      const sha256 = hash.digest('hex');
      return { key, size, sha256, etag: sha256 };
    } catch (err) {
      await rm(partial, { force: true }).catch(() => undefined);
      if (err instanceof ObjectStoreError) throw err;
      throw new ObjectStoreError(`Could not write ${key} to ${this.description}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const path = this.path(key);
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new ObjectStoreError(`Could not read ${key} in ${this.description}: ${err.message}`);
    });
    if (!info) return undefined;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return { size: info.size, etag: hash.digest('hex') };
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

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async list(prefix: string): Promise<string[]> {
    const found: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const full = join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (!entry.name.includes('.partial-')) found.push(relative(this.root, full));
      }
    };
    await walk(this.root);
    return found.filter((k) => k.startsWith(prefix)).sort();
  }
}
