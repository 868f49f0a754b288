import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDriverContract } from '../driver-contract.js';
import { testLocalDriverSetup } from '../../testing/local-driver.js';
import { hostSearchPath } from '../../testing/test-env.js';

const { dir, catalog, newDriver } = await testLocalDriverSetup(31800);

runDriverContract({
  name: 'local',
  engines: ['postgres', 'redis', 'mariadb'],
  newDriver: async () => newDriver(),
  spec: (engine) => ({
    uid: randomUUID(),
    name: 'contract',
    engine,
    version: catalog.list().find((e) => e.engine === engine)!.versions[0]!,
    plan: catalog.plan(engine, 'small')!,
    storageGB: 1,
    parameters: {},
    acl: ['127.0.0.2/32'],
    stopped: false,
    credentials: { username: 'contract', password: 'contract-password', version: 1 },
  }),
  kill: async (uid) => {
    const run = join(dir, 'databases', uid);
    const file = await readFile(join(run, 'data', 'postmaster.pid'), 'utf8')
      .catch(() => readFile(join(run, 'run', 'redis.pid'), 'utf8'))
      .catch(() => readFile(join(run, 'run', 'mariadb.pid'), 'utf8'));
    process.kill(Number(file.split('\n')[0]), 'SIGKILL');
  },
});

describe('storage usage', () => {
  it("keeps du's total when a file vanished under it, and is unknown rather than 0 when du printed none", async () => {
    const bin = await mkdtemp(join(tmpdir(), 'kumo-du-'));
    // A stand-in for GNU du first on the driver's search path, as it behaves when a server's
    // temporary file is removed while du walks the data directory (exit 1, the total of what it
    // saw), then when it saw nothing. Without one yet, the real du is found.
    const driver = newDriver({ searchPath: `${bin}:${hostSearchPath()}` });
    const spec = {
      uid: randomUUID(),
      name: 'usage',
      engine: 'postgres' as const,
      version: catalog.list().find((e) => e.engine === 'postgres')!.versions[0]!,
      plan: catalog.plan('postgres', 'small')!,
      storageGB: 1,
      parameters: {},
      acl: [],
      stopped: false,
      credentials: { username: 'usage', password: 'usage-password', version: 1 },
    };
    await driver.apply(spec);
    const du = (script: string) => writeFile(join(bin, 'du'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    try {
      expect((await driver.observe(spec)).usage?.storageBytes).toBeGreaterThan(1024 * 1024);
      await du(
        `echo "du: cannot access '$4/base/pgsql_tmp/t1': No such file or directory" >&2\nprintf '4242\\t%s\\n' "$4"\nexit 1`,
      );
      expect((await driver.observe(spec)).usage).toEqual({ storageBytes: 4242 });
      await du(`echo "du: fts_read failed: $4: Input/output error" >&2\nexit 1`);
      const seen = await driver.observe(spec);
      expect(seen.running).toBe(true);
      expect(seen.usage).toBeUndefined();
    } finally {
      await driver.delete(spec.uid);
      await rm(bin, { recursive: true, force: true });
      await driver.close();
    }
  });
});
