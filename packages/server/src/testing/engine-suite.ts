import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DatabaseTestKumo, databaseHelpers, startKumoWithProject } from './database-helpers.js';
import { waitFor } from './wait.js';

/** What GET …/credentials answers. */
export interface SuiteCredentials {
  username: string;
  password: string;
  database: string;
  host: string;
  port: number;
  uri: string;
  version: number;
}

type Value = string | number | boolean;

/**
 * How the shared engine suite talks to one engine as a customer would, from a chosen local source
 * address (127.0.0.2 is in the ACL, 127.0.0.3 is not), and how it finds the engine's processes.
 * The suite itself knows no engine: each engine's test file gives it a probe.
 */
export interface EngineProbe {
  engine: string;
  /** Stores value under key (creating what it needs); rejects when refused or not authenticated. */
  put(c: SuiteCredentials, from: string, key: string, value: string): Promise<void>;
  /** The value under key, undefined when there is none; rejects when refused or not authenticated. */
  get(c: SuiteCredentials, from: string, key: string): Promise<string | undefined>;
  /** A parameter the server applies live, and how to read the value it runs with. */
  reload: {
    parameters: Record<string, Value>;
    running: (ctx: ProbeContext) => Promise<string>;
    expect: string;
  };
  /** A parameter that needs a restart, likewise. */
  restart: {
    parameters: Record<string, Value>;
    running: (ctx: ProbeContext) => Promise<string>;
    expect: string;
  };
  /**
   * Tries what only an administrator may (change a server setting, make a user) with the
   * customer's credentials: resolves true when the server refused it.
   */
  administerRefused(c: SuiteCredentials, from: string): Promise<boolean>;
  /** A parameter value the small plan cannot hold, and the field the 422 names. */
  planLimit?: { parameters: Record<string, Value>; field: string };
  /** Pid files of the instance's processes, relative to its directory; the first is the server. */
  pidFiles: string[];
}

/** What a probe may use to read a running value: the credentials and the instance's directory. */
export interface ProbeContext {
  credentials: SuiteCredentials;
  instanceDir: string;
}

/**
 * The behaviour every engine shows on the local driver, through the public API, against real
 * servers: one suite, run by each engine's test file (the way the driver contract is shared).
 */
export function runEngineSuite(probe: EngineProbe, project: string): void {
  describe(`managed ${probe.engine}`, () => {
    let t: DatabaseTestKumo;
    let db: any;
    let creds: SuiteCredentials;
    const DB = `/v1/projects/${project}/databases`;
    const { json, get, patch, ready } = databaseHelpers(() => t, project);
    const instanceDir = () => join(t.dataDir, 'databases', db.metadata.uid);
    const pid = async (file = probe.pidFiles[0]!) =>
      Number((await readFile(join(instanceDir(), file), 'utf8')).split('\n')[0]);
    const reasons = async (name: string) =>
      (await json(t.request(`${DB}/${name}/events`))).items.map((e: { reason: string }) => e.reason);
    const refused = (from: string, c = creds) =>
      probe.put(c, from, 'probe', 'x').then(
        () => false,
        () => true,
      );

    beforeAll(async () => {
      t = await startKumoWithProject(inject('pg'), project);
    });
    afterAll(() => t?.stop());

    it('provisions a server that serves its credentials from an address in the ACL, and no other', async () => {
      const engines = (await json(t.request('/v1/engines'))).items;
      const info = engines.find((e: { engine: string }) => e.engine === probe.engine);
      expect(info, `GET /v1/engines lists ${probe.engine}`).toBeDefined();
      const res = await t.request(DB, {
        method: 'POST',
        json: {
          metadata: { name: 'main' },
          spec: {
            engine: probe.engine,
            version: info.versions[0],
            plan: 'small',
            storageGB: 1,
            acl: [{ cidr: '127.0.0.2/32' }],
          },
        },
      });
      expect(res.status).toBe(201);
      db = await ready('main');
      for (const type of ['Provisioned', 'ConfigApplied', 'AclApplied', 'Ready'])
        expect(db.status.conditions).toContainEqual(expect.objectContaining({ type, status: 'True' }));
      expect(db.status.usage.storageBytes).toBeGreaterThan(0);
      creds = await json(t.request(`${DB}/main/credentials`));
      expect(creds).toMatchObject({ username: 'main', port: db.status.endpoint.port });
      expect(creds.uri).toContain(encodeURIComponent(creds.password));
      await probe.put(creds, '127.0.0.2', 'greeting', 'hello');
      expect(await probe.get(creds, '127.0.0.2', 'greeting')).toBe('hello');
      expect(await refused('127.0.0.3')).toBe(true);
      expect(await refused('127.0.0.2', { ...creds, password: `${creds.password}-wrong` })).toBe(true);
    });

    it('gives the customer their data, and no administration of the server', async () => {
      expect(await probe.administerRefused(creds, '127.0.0.2')).toBe(true);
    });

    it('applies an ACL change without a restart', async () => {
      const server = await pid();
      await patch('main', { spec: { acl: [{ cidr: '127.0.0.2/32' }, { cidr: '127.0.0.3/32' }] } });
      await ready('main');
      await waitFor(async () => ((await refused('127.0.0.3')) ? undefined : true), 'access from 127.0.0.3');
      expect(await pid()).toBe(server);
      await patch('main', { spec: { acl: [{ cidr: '127.0.0.2/32' }] } });
      await ready('main');
      await waitFor(async () => ((await refused('127.0.0.3')) ? true : undefined), '127.0.0.3 refused again');
    });

    it('applies a reload parameter live and restarts for a restart parameter, keeping the data', async () => {
      const server = await pid();
      const ctx = () => ({ credentials: creds, instanceDir: instanceDir() });
      await patch('main', { spec: { parameters: probe.reload.parameters } });
      await ready('main');
      expect(await probe.reload.running(ctx())).toBe(probe.reload.expect);
      expect(await pid()).toBe(server);
      expect(await reasons('main')).toContain('Reloaded');
      await patch('main', {
        spec: { parameters: { ...probe.reload.parameters, ...probe.restart.parameters } },
      });
      await ready('main');
      expect(await probe.restart.running(ctx())).toBe(probe.restart.expect);
      expect(await pid()).not.toBe(server);
      expect(await probe.get(creds, '127.0.0.2', 'greeting')).toBe('hello');
    });

    it.skipIf(!probe.planLimit)('refuses a parameter the plan cannot hold, naming the field', async () => {
      const res = await t.request(`${DB}/main`, {
        method: 'PATCH',
        json: { spec: { parameters: probe.planLimit!.parameters } },
      });
      expect(res.status).toBe(422);
      const problem = (await res.json()) as { errors: Array<{ field: string }> };
      expect(problem.errors.map((e) => e.field)).toContain(probe.planLimit!.field);
    });

    it('heals a kill -9 of each of its processes, keeping what it committed', async () => {
      await probe.put(creds, '127.0.0.2', 'durable', 'yes');
      // The least durable engine loses at most its last second of writes in a crash (docs/databases.md).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      for (const file of probe.pidFiles) {
        const before = await pid(file);
        process.kill(before, 'SIGKILL');
        await waitFor(
          async () => ((await pid(file).catch(() => before)) !== before ? true : undefined),
          `${file} replaced`,
        );
        await ready('main');
        await waitFor(async () => ((await refused('127.0.0.2')) ? undefined : true), 'serving again');
      }
      expect(await reasons('main')).toEqual(expect.arrayContaining(['Crashed', 'Restarted']));
      expect(await probe.get(creds, '127.0.0.2', 'durable')).toBe('yes');
    });

    it('stops and starts with its data', async () => {
      await patch('main', { spec: { stopped: true } });
      await waitFor(
        async () => ((await get('main')).status.phase === 'Stopped' ? true : undefined),
        'Stopped',
      );
      expect(await refused('127.0.0.2')).toBe(true);
      await patch('main', { spec: { stopped: false } });
      await ready('main');
      expect(await probe.get(creds, '127.0.0.2', 'greeting')).toBe('hello');
    });

    it('gives a DatabaseUser a login of its own that outlives a restart and ends with it', async () => {
      const info = (await json(t.request('/v1/engines'))).items.find(
        (e: { engine: string }) => e.engine === probe.engine,
      );
      const USERS = `/v1/projects/${project}/databaseusers`;
      const made = await t.request(USERS, {
        method: 'POST',
        json: { metadata: { name: 'app' }, spec: { database: 'main' } },
      });
      expect(made.status).toBe(201);
      const settled = info.capabilities.users ? 'Ready' : 'Error';
      const user = await waitFor(async () => {
        const u = await json(t.request(`${USERS}/app`));
        return u.status.phase === settled ? u : undefined;
      }, `the DatabaseUser ${settled}`);
      if (!info.capabilities.users) {
        // An engine without users says so, instead of pretending.
        expect(user.status.conditions).toContainEqual(
          expect.objectContaining({ reason: 'UsersUnsupported' }),
        );
        return;
      }
      const login: SuiteCredentials = { ...(await json(t.request(`${USERS}/app/credentials`))), version: 0 };
      expect(login.username).toBe('u_app');
      await probe.put(login, '127.0.0.2', 'by-app', 'mine');
      expect(await probe.get(creds, '127.0.0.2', 'by-app'), 'the owner sees what the user wrote').toBe(
        'mine',
      );
      expect(await refused('127.0.0.3', login), 'the ACL holds for users too').toBe(true);

      await patch('main', { spec: { stopped: true } });
      await waitFor(
        async () => ((await get('main')).status.phase === 'Stopped' ? true : undefined),
        'stopped',
      );
      await patch('main', { spec: { stopped: false } });
      await ready('main');
      await waitFor(async () => ((await refused('127.0.0.2')) ? undefined : true), 'serving again');
      expect(await refused('127.0.0.2', login), 'the user outlives a restart of the server').toBe(false);

      expect((await t.request(`${USERS}/app`, { method: 'DELETE' })).status).toBe(202);
      await waitFor(
        async () => ((await t.request(`${USERS}/app`)).status === 404 ? true : undefined),
        'the DatabaseUser gone',
      );
      expect(await refused('127.0.0.2', login), 'a deleted user cannot log in').toBe(true);
      expect(await refused('127.0.0.2'), 'the owner still can').toBe(false);
    });

    it('rotates the password: the new one works once applied, the old one no longer', async () => {
      const old = creds;
      const rotated = await json(t.request(`${DB}/main/credentials/rotate`, { method: 'POST' }));
      expect(rotated.version).toBe(old.version + 1);
      await waitFor(
        async () => ((await get('main')).status.credentialsVersion === rotated.version ? true : undefined),
        `status.credentialsVersion ${rotated.version}`,
      );
      creds = rotated;
      expect(await probe.get(creds, '127.0.0.2', 'greeting')).toBe('hello');
      expect(await refused('127.0.0.2', old)).toBe(true);
    });

    it('backs up, and a new database restored from the backup has the data', async () => {
      const backup = await t.request(`/v1/projects/${project}/backups`, {
        method: 'POST',
        json: { metadata: { name: 'main-1' }, spec: { database: 'main' } },
      });
      expect(backup.status).toBe(201);
      const done = await waitFor(async () => {
        const b = await json(t.request(`/v1/projects/${project}/backups/main-1`));
        return b.status.phase === 'Succeeded' || b.status.phase === 'Failed' ? b : undefined;
      }, 'backup finished');
      expect(done.status.phase, JSON.stringify(done.status.conditions)).toBe('Succeeded');
      const fork = await t.request(DB, {
        method: 'POST',
        json: {
          metadata: { name: 'copy' },
          spec: {
            engine: probe.engine,
            version: db.spec.version,
            plan: 'small',
            storageGB: 1,
            acl: [{ cidr: '127.0.0.2/32' }],
            restoreFrom: { backup: 'main-1' },
          },
        },
      });
      expect(fork.status).toBe(201);
      await ready('copy');
      const copy = await json(t.request(`${DB}/copy/credentials`));
      expect(await probe.get(copy, '127.0.0.2', 'greeting')).toBe('hello');
      expect(await probe.get(copy, '127.0.0.2', 'durable')).toBe('yes');
    });

    it('deletes without a trace: no directory, no process, the port closed', async () => {
      const pids = await Promise.all(probe.pidFiles.map((file) => pid(file)));
      const dir = instanceDir();
      for (const name of ['main', 'copy']) await t.request(`${DB}/${name}`, { method: 'DELETE' });
      for (const name of ['main', 'copy'])
        await waitFor(
          async () => ((await t.request(`${DB}/${name}`)).status === 404 ? true : undefined),
          `${name} deleted`,
        );
      expect(existsSync(dir)).toBe(false);
      for (const p of pids)
        await waitFor(async () => {
          try {
            process.kill(p, 0);
          } catch {
            return true;
          }
          return / Z /.test(await readFile(`/proc/${p}/stat`, 'utf8').catch(() => ' Z ')) ? true : undefined;
        }, `process ${p} gone`);
      expect(await refused('127.0.0.2')).toBe(true);
    });
  });
}
