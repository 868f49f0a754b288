import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type ObjectStore, ObjectStoreError } from './object-store.js';

export interface ObjectStoreContractOptions {
  name: string;
  /** The store under test; called once per test. */
  store: () => ObjectStore;
  /** Changes the stored bytes of key behind the store's back (disk rot, a stray writer). */
  corrupt: (key: string) => Promise<void>;
  /** A store whose backend refuses or cannot be reached: every call must fail loudly. */
  broken: () => ObjectStore;
}

async function* chunks(data: Buffer, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/**
 * A body of more than one multipart part (so an S3 upload has begun) that then waits for `release`
 * (forever without one; a rejected release fails the upload). `asked` resolves once the store has
 * taken the first part and asks for more.
 */
function hanging(release = new Promise<void>(() => undefined)): AsyncGenerator<Uint8Array> & {
  asked: Promise<void>;
} {
  let asked!: () => void;
  const body = (async function* () {
    yield randomBytes(6 * 1024 * 1024);
    asked();
    await release;
  })();
  return Object.assign(body, { asked: new Promise<void>((resolve) => (asked = resolve)) });
}

/** Resolves once the upload of body has begun; rejects if the put failed first. */
async function started(put: Promise<unknown>, body: { asked: Promise<void> }): Promise<void> {
  await Promise.race([body.asked, put.then(() => undefined)]);
}

async function read(store: ObjectStore, key: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of await store.get(key)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** The behaviour every object store must show. Each implementation's test calls this. */
export function runObjectStoreContract(options: ObjectStoreContractOptions): void {
  describe(`object store contract: ${options.name}`, () => {
    it('stores what it is given, says its size and SHA-256, and gives it back byte for byte', async () => {
      const store = options.store();
      const data = randomBytes(300_000);
      const put = await store.put('db-1/small.dump', chunks(data));
      expect(put).toMatchObject({ key: 'db-1/small.dump', size: data.length });
      expect(put.sha256).toBe(createHash('sha256').update(data).digest('hex'));
      expect(await store.stat('db-1/small.dump')).toEqual({ size: data.length, etag: put.etag });
      expect((await read(store, 'db-1/small.dump')).equals(data)).toBe(true);
    });

    it('stores objects larger than one part, and empty ones', async () => {
      const store = options.store();
      const data = randomBytes(13 * 1024 * 1024 + 17);
      const put = await store.put('db-1/large.dump', chunks(data, 1024 * 1024));
      expect(await store.stat('db-1/large.dump')).toEqual({ size: data.length, etag: put.etag });
      expect((await read(store, 'db-1/large.dump')).equals(data)).toBe(true);
      const empty = await store.put('db-1/empty', chunks(Buffer.alloc(0)));
      expect(empty.size).toBe(0);
      expect((await store.stat('db-1/empty'))?.size).toBe(0);
    });

    it('lists by prefix, deletes idempotently, and says when something is not there', async () => {
      const store = options.store();
      await store.put('db-2/a', chunks(Buffer.from('a')));
      await store.put('db-2/b', chunks(Buffer.from('b')));
      await store.put('db-3/c', chunks(Buffer.from('c')));
      expect(await store.list('db-2/')).toEqual(['db-2/a', 'db-2/b']);
      await store.delete('db-2/a');
      await store.delete('db-2/a');
      expect(await store.list('db-2/')).toEqual(['db-2/b']);
      expect(await store.stat('db-2/a')).toBeUndefined();
      await expect(store.get('db-2/a')).rejects.toBeInstanceOf(ObjectStoreError);
    });

    it('reports a tag that changes when the stored bytes change behind its back', async () => {
      const store = options.store();
      const put = await store.put('db-4/x.dump', chunks(randomBytes(10_000)));
      await options.corrupt('db-4/x.dump');
      expect((await store.stat('db-4/x.dump'))?.etag).not.toBe(put.etag);
    });

    it('fails loudly, naming no secret, when the store refuses or cannot be reached', async () => {
      const broken = options.broken();
      const put = broken.put('db-5/y', chunks(Buffer.from('y')));
      await expect(put).rejects.toBeInstanceOf(ObjectStoreError);
      await expect(broken.stat('db-5/y')).rejects.toBeInstanceOf(ObjectStoreError);
    });

    it('sweeps away what an interrupted upload left behind, and nothing else', async () => {
      // A Kumo that stopped mid-upload: its store is gone, its upload never finished. The stores
      // below are a later Kumo's, with an upload of their own in flight while they sweep.
      let gone!: (err: Error) => void;
      const abandoned = hanging(new Promise<void>((_, reject) => (gone = reject)));
      const crashed = options.store().put('db-6/crashed.dump', abandoned);
      await started(crashed, abandoned);
      const store = options.store();
      await store.put('db-6/kept.dump', chunks(Buffer.from('kept')));
      let finish!: () => void;
      const body = hanging(new Promise<void>((resolve) => (finish = resolve)));
      const inFlight = store.put('db-6/in-flight.dump', body);
      await started(inFlight, body);

      const anHourAgo = new Date(Date.now() - 3600_000);
      expect(await store.sweep(anHourAgo)).toBe(0); // too recent: it might still be running elsewhere
      expect(await store.sweep(new Date(Date.now() + 60_000))).toBe(1);
      expect(await store.sweep(new Date(Date.now() + 60_000))).toBe(0);

      finish();
      const stored = await inFlight;
      expect(await store.stat('db-6/in-flight.dump')).toEqual({ size: stored.size, etag: stored.etag });
      expect(await store.list('db-6/')).toEqual(['db-6/in-flight.dump', 'db-6/kept.dump']);
      // The test's stand-in for the stopped Kumo lets go of what it still holds (an open file).
      gone(new Error('stopped'));
      await crashed.catch(() => undefined);
    });

    it('deletes with a key what interrupted uploads of exactly that key left behind, and nothing else', async () => {
      // A stopped Kumo left an upload of the key behind, and one of a key that merely starts with
      // it. The later Kumo retakes the backup: it deletes the key while another upload is in flight.
      let gone!: (err: Error) => void;
      const stopped = new Promise<void>((_, reject) => (gone = reject));
      const crashedStore = options.store();
      const abandoned = hanging(stopped);
      const crashed = crashedStore.put('db-7/retaken.dump', abandoned);
      await started(crashed, abandoned);
      const neighbour = hanging(stopped);
      const crashedNeighbour = crashedStore.put('db-7/retaken.dump.manifest.json', neighbour);
      await started(crashedNeighbour, neighbour);
      const store = options.store();
      await store.put('db-7/kept.dump', chunks(Buffer.from('kept')));
      let finish!: () => void;
      const body = hanging(new Promise<void>((resolve) => (finish = resolve)));
      const inFlight = store.put('db-7/in-flight.dump', body);
      await started(inFlight, body);

      await store.delete('db-7/retaken.dump');
      expect(await store.list('db-7/')).toEqual(['db-7/kept.dump']);
      // Only the neighbour's leftover is still there for the sweep: nothing of the deleted key.
      expect(await store.sweep(new Date(Date.now() + 60_000))).toBe(1);

      finish();
      const stored = await inFlight;
      expect(await store.stat('db-7/in-flight.dump')).toEqual({ size: stored.size, etag: stored.etag });
      expect(await store.list('db-7/')).toEqual(['db-7/in-flight.dump', 'db-7/kept.dump']);
      gone(new Error('stopped'));
      await Promise.allSettled([crashed, crashedNeighbour]);
    });

    it('never deletes an upload it has in flight, even one of the key it deletes', async () => {
      const store = options.store();
      let finish!: () => void;
      const body = hanging(new Promise<void>((resolve) => (finish = resolve)));
      const inFlight = store.put('db-8/running.dump', body);
      await started(inFlight, body);
      await store.delete('db-8/running.dump');
      finish();
      const stored = await inFlight;
      expect(await store.stat('db-8/running.dump')).toEqual({ size: stored.size, etag: stored.etag });
    });

    it('refuses keys that could escape its root', async () => {
      const store = options.store();
      for (const key of ['../x', '/etc/passwd', 'a/../../b', 'a//b', '']) {
        await expect(store.put(key, chunks(Buffer.from('z')))).rejects.toBeInstanceOf(ObjectStoreError);
      }
    });
  });
}
