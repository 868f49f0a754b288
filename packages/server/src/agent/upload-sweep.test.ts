import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, inject, it } from 'vitest';
import { startTestKumo } from '../testing/test-kumo.js';
import { waitFor } from '../testing/wait.js';

let dataDir: string | undefined;
afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it('removes what backups interrupted by a stop left in the filesystem store when it starts, and nothing else', async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'kumo-sweep-'));
  // As a Kumo killed mid-backup leaves its store: temporary files next to finished objects.
  const dir = join(dataDir, 'backups', 'shop', 'orders', 'uid-1');
  await mkdir(dir, { recursive: true });
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  const files = {
    stale: 'b1-uid.dump.partial-0b9c',
    recent: 'b2-uid.dump.partial-77aa', // might be another writer's upload in flight
    oldObject: 'b0-uid.dump',
    oldManifest: 'b0-uid.dump.manifest.json',
  };
  for (const name of Object.values(files)) await writeFile(join(dir, name), 'bytes');
  for (const name of [files.stale, files.oldObject, files.oldManifest])
    await utimes(join(dir, name), twoHoursAgo, twoHoursAgo);

  const t = await startTestKumo(inject('pg'), { dataDir });
  try {
    const left = await waitFor(async () => {
      const names = await readdir(dir);
      return names.includes(files.stale) ? undefined : names;
    }, 'the stale temporary file to be removed');
    expect(left.sort()).toEqual([files.oldObject, files.oldManifest, files.recent].sort());
  } finally {
    await t.stop();
  }
});

it("removes what interrupted steps left (a verification's scratch instance, a template build, temporary files) when it starts, and no data", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-sweep-'));
  try {
    // As a Kumo killed mid-verification leaves it, after the backup was deleted meanwhile: its
    // scratch instance (never started here) next to a database's instance.
    const databases = join(dir, 'databases');
    for (const uid of ['scratch-5f0c', 'a1b2c3']) {
      await mkdir(join(databases, uid), { recursive: true });
      await writeFile(
        join(databases, uid, 'instance.json'),
        JSON.stringify({
          uid,
          engine: 'postgres',
          version: '15',
          port: 1,
          adminPassword: '',
          expectRunning: false,
          applied: {},
        }),
      );
    }
    // And what other interrupted steps leave: a template build, temporary state and config files.
    const template = join(dir, 'templates', 'postgres-15');
    await mkdir(join(template, 'data.building-4242', 'base'), { recursive: true });
    await writeFile(join(template, 'initdb-pwfile'), 'secret\n');
    await writeFile(join(databases, 'a1b2c3', 'instance.json.tmp'), '{"half":');
    await mkdir(join(databases, 'a1b2c3', 'data'));
    await writeFile(join(databases, 'a1b2c3', 'data', 'kumo.conf.kumo-tmp'), 'port = 1');
    await writeFile(join(databases, 'a1b2c3', 'data', 'kumo.conf'), 'port = 1');
    const t = await startTestKumo(inject('pg'), { dataDir: dir });
    try {
      expect(await readdir(databases)).toEqual(['a1b2c3']);
      expect(await readdir(template)).toEqual([]);
      expect((await readdir(join(databases, 'a1b2c3'))).sort()).toEqual(['data', 'instance.json']);
      expect(await readdir(join(databases, 'a1b2c3', 'data'))).toEqual(['kumo.conf']);
    } finally {
      await t.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
