import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runDriverContract } from '../driver-contract.js';
import { testLocalDriverSetup } from '../../testing/local-driver.js';

const { dir, catalog, newDriver } = await testLocalDriverSetup(31800);

runDriverContract({
  name: 'local',
  engines: ['postgres', 'redis'],
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
    const file = await readFile(join(run, 'data', 'postmaster.pid'), 'utf8').catch(() =>
      readFile(join(run, 'run', 'redis.pid'), 'utf8'),
    );
    process.kill(Number(file.split('\n')[0]), 'SIGKILL');
  },
});
