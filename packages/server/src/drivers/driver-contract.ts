import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { compareFacts } from '../agent/compare-facts.js';
import { engineModule } from '../engines/registry.js';
import type { SuiteCredentials } from '../testing/engine-suite.js';
import { PROBES } from '../testing/engine-probes/index.js';
import type { InstanceSpec, RuntimeDriver } from './driver.js';

export interface DriverContractOptions {
  name: string;
  newDriver: () => Promise<RuntimeDriver>;
  /** A valid spec for a new instance of `engine`. */
  spec: (engine: InstanceSpec['engine']) => InstanceSpec;
  engines: Array<InstanceSpec['engine']>;
  /** Kills the instance's server process the hard way (kill -9), as a crash would. */
  kill: (uid: string) => Promise<void>;
}

/**
 * The behaviour every runtime driver must show, whatever it runs on. Each driver's test calls
 * this, the way Hono's routers share one suite.
 */
export function runDriverContract(options: DriverContractOptions): void {
  for (const engine of options.engines) {
    describe(`driver contract: ${options.name} / ${engine}`, () => {
      let driver: RuntimeDriver;
      const spec = options.spec(engine);
      afterAll(async () => {
        await driver?.delete(spec.uid);
        await driver?.close();
      });

      it('observes an unknown instance as not existing, without creating anything', async () => {
        driver = await options.newDriver();
        const seen = await driver.observe(spec);
        expect(seen).toMatchObject({ exists: false, running: false, ready: false });
        expect((await driver.observe(spec)).exists).toBe(false);
        expect(await driver.instances()).not.toContain(spec.uid);
      });

      it('creates on apply, and then observes it ready and converged, with an endpoint', async () => {
        const outcome = await driver.apply(spec);
        expect(await driver.instances()).toContain(spec.uid);
        expect(driver.busy(spec.uid)).toBe(false); // nothing under way once apply returned
        expect(outcome.actions.map((a) => a.reason)).toEqual(expect.arrayContaining(['Created', 'Started']));
        const seen = await driver.observe(spec);
        expect(seen).toMatchObject({
          exists: true,
          running: true,
          ready: true,
          configApplied: true,
          aclApplied: true,
          credentialsApplied: true,
          crashed: false,
        });
        expect(seen.endpoint?.port).toBeGreaterThan(0);
        expect(seen.usage?.storageBytes).toBeGreaterThan(0);
      });

      it('is idempotent: applying the same spec again does nothing', async () => {
        expect((await driver.apply(spec)).actions).toEqual([]);
      });

      it('applies new credentials, and only the new ones connect', async () => {
        const rotated = {
          ...spec,
          credentials: { ...spec.credentials, password: `${spec.credentials.password}-2`, version: 2 },
        };
        expect((await driver.observe(rotated)).credentialsApplied).toBe(false);
        expect((await driver.apply(rotated)).actions.map((a) => a.reason)).toContain('CredentialsApplied');
        expect((await driver.observe(rotated)).ready).toBe(true);
        expect((await driver.observe(spec)).ready).toBe(false); // the old password no longer works
        Object.assign(spec, rotated);
      });

      it('stops on request and starts again', async () => {
        await driver.apply({ ...spec, stopped: true });
        expect(await driver.observe(spec)).toMatchObject({ exists: true, running: false, crashed: false });
        await driver.apply(spec);
        expect((await driver.observe(spec)).ready).toBe(true);
      });

      it('tells about a crashed process, observes it as crashed, and restarts it on apply', async () => {
        const exited = new Promise<string>((resolve) => {
          const off = driver.onProcessExit((uid) => {
            off();
            resolve(uid);
          });
        });
        await options.kill(spec.uid);
        expect(await exited).toBe(spec.uid);
        expect((await driver.observe(spec)).crashed).toBe(true);
        expect((await driver.apply(spec)).actions.map((a) => a.reason)).toContain('Restarted');
        expect((await driver.observe(spec)).ready).toBe(true);
      });

      it('serves the log', async () => {
        expect((await driver.logs(spec.uid, 5)).length).toBeGreaterThan(0);
      });

      // Gated by what the driver and the engine declare; a skip says which of them lacks it.
      it('backs up, restores into a new instance and in place, with the facts of the backup', async (ctx) => {
        if (!driver.capabilities.supportsBackup || !driver.backup || !driver.restore || !driver.dataFacts)
          return ctx.skip(`driver ${options.name} declares no backups (capabilities.supportsBackup)`);
        if (!engineModule(engine)?.capabilities.backup) return ctx.skip(`${engine} declares no backups`);
        const probe = PROBES[engine];
        if (!probe) return ctx.skip(`no test probe writes data into ${engine}`);
        const credentialsOf = async (of: InstanceSpec): Promise<SuiteCredentials> => {
          const endpoint = (await driver.observe(of)).endpoint!;
          return { ...of.credentials, database: of.name, uri: '', ...endpoint };
        };
        const from = of(spec.acl[0]!);
        await probe.put(await credentialsOf(spec), from, 'contract', 'backed up');
        const stream = await driver.backup(spec);
        const dump: Uint8Array[] = [];
        for await (const chunk of stream.body ?? []) dump.push(chunk);
        const facts = await stream.facts;
        expect(stream.format).not.toBe('');
        await probe.put(await credentialsOf(spec), from, 'contract', 'written after');

        const copy: InstanceSpec = { ...spec, uid: randomUUID() };
        try {
          await driver.apply(copy);
          await driver.restore(copy, replay(dump), { replace: false });
          expect(await probe.get(await credentialsOf(copy), from, 'contract')).toBe('backed up');
          if (engineModule(engine)!.capabilities.factsFromSnapshot)
            expect(compareFacts(facts.tables, await driver.dataFacts(copy))).toBeUndefined();
        } finally {
          await driver.delete(copy.uid);
        }
        await driver.restore(spec, replay(dump), { replace: true });
        await driver.apply(spec);
        expect((await driver.observe(spec)).ready).toBe(true);
        expect(await probe.get(await credentialsOf(spec), from, 'contract')).toBe('backed up');
      });

      it('deletes every trace, idempotently', async () => {
        await driver.delete(spec.uid);
        expect((await driver.observe(spec)).exists).toBe(false);
        expect(await driver.instances()).not.toContain(spec.uid);
        await driver.delete(spec.uid);
      });
    });
  }
}

/** An address inside an ACL entry (its network's own address for a /32). */
function of(cidr: string): string {
  return cidr.split('/')[0]!;
}

async function* replay(chunks: Uint8Array[]): AsyncIterable<Uint8Array> {
  yield* chunks;
}
