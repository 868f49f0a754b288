import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectFrom, queryFrom } from '../testing/pg-connect.js';
import { readSse } from '../testing/sse-client.js';
import { type DatabaseTestKumo, databaseHelpers, startKumoWithProject } from '../testing/database-helpers.js';
import { startTestKumo } from '../testing/test-kumo.js';
import { waitFor } from '../testing/wait.js';

// Real postgres processes managed by a real Kumo, driven through its HTTP API.
let t: DatabaseTestKumo;
const DB = '/v1/projects/shop/databases';

beforeAll(async () => {
  t = await startKumoWithProject(inject('pg'), 'shop');
});
afterAll(() => t?.stop());

const { json, get, patch, ready } = databaseHelpers(() => t, 'shop');

async function uri(name: string): Promise<string> {
  return (await json(t.request(`${DB}/${name}/credentials`))).uri;
}

async function postmasterPid(db: any): Promise<number> {
  return Number(
    (await readFile(join(t.dataDir, 'databases', db.metadata.uid, 'data', 'postmaster.pid'), 'utf8')).split(
      '\n',
    )[0],
  );
}

/** The process is gone (allowing for the moment before an exited process is reaped). */
/** Whether the process runs now (a zombie has exited). */
async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !/ Z /.test(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ' Z '));
}

function gone(pid: number): Promise<boolean> {
  return waitFor(async () => {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    return / Z /.test(stat) ? true : undefined; // a zombie has exited
  }, `process ${pid} to exit`);
}

async function events(name: string): Promise<Array<{ type: string; reason: string; message: string }>> {
  return (await json(t.request(`${DB}/${name}/events`))).items;
}

describe('managed PostgreSQL', () => {
  let db: any;

  it('provisions a database that becomes Ready and accepts its credentials from an allowed address', async () => {
    const res = await t.request(DB, {
      method: 'POST',
      json: {
        metadata: { name: 'orders' },
        spec: {
          engine: 'postgres',
          version: '15',
          plan: 'small',
          acl: [{ cidr: '127.0.0.2/32', description: 'app' }],
        },
      },
    });
    expect(res.status).toBe(201);
    db = await ready('orders');
    for (const type of ['Provisioned', 'ConfigApplied', 'AclApplied', 'Ready']) {
      expect(db.status.conditions).toContainEqual(expect.objectContaining({ type, status: 'True' }));
    }
    const [from, to] = t.dbPorts.split('-').map(Number) as [number, number];
    expect(db.status.endpoint.port).toBeGreaterThanOrEqual(from);
    expect(db.status.endpoint.port).toBeLessThanOrEqual(to);
    expect(db.status.usage.storageBytes).toBeGreaterThan(1_000_000);

    const creds = await json(t.request(`${DB}/orders/credentials`));
    expect(creds).toMatchObject({ username: 'orders', database: 'orders', port: db.status.endpoint.port });
    const client = await connectFrom(creds.uri, '127.0.0.2');
    await client.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    await client.query("INSERT INTO items VALUES (1, 'kept')");
    expect((await client.query('SELECT current_user AS u, inet_client_addr() AS a')).rows[0]).toEqual({
      u: 'orders',
      a: '127.0.0.2',
    });
    await client.end();
  });

  it('refuses a connection from an address the ACL does not allow, and lets a temporary entry expire', async () => {
    const u = await uri('orders');
    await expect(queryFrom(u, '127.0.0.3', 'SELECT 1')).rejects.toThrow(/no pg_hba.conf entry/);
    const pid = await postmasterPid(db);
    const expiresAt = new Date(Date.now() + 8000).toISOString(); // long enough to apply on a loaded machine
    await patch('orders', {
      spec: { acl: [{ cidr: '127.0.0.2/32' }, { cidr: '127.0.0.3/32', description: 'support', expiresAt }] },
    });
    const aclApplied = (d: any) => d.status.conditions.find((c: { type: string }) => c.type === 'AclApplied');
    expect(aclApplied(await ready('orders')).message).toBe('2 ACL entries enforced');
    await waitFor(() => queryFrom(u, '127.0.0.3', 'SELECT 1').then(() => true), 'temporary access');
    await waitFor(
      () =>
        queryFrom(u, '127.0.0.3', 'SELECT 1').then(
          () => undefined,
          (err: Error) => (/pg_hba/.test(err.message) ? true : undefined),
        ),
      'temporary access to expire',
    );
    // Status says what is enforced: the expired entry no longer counts.
    await waitFor(
      async () =>
        aclApplied(await get('orders')).message === '1 ACL entry enforced (1 expired)' ? true : undefined,
      'AclApplied to count only the active entry',
    );
    expect((await queryFrom(u, '127.0.0.2', 'SELECT 1 AS one'))[0]).toEqual({ one: 1 });
    expect(await postmasterPid(db)).toBe(pid); // ACL changes reload, never restart
  });

  it('answers with dryRun whether a change reloads or restarts, changing nothing', async () => {
    const before = await get('orders');
    const dry = async (body: unknown) =>
      json(t.request(`${DB}/orders?dryRun=true`, { method: 'PATCH', json: body }));
    const reload = await dry({ spec: { parameters: { work_mem: 8192 } } });
    expect(reload).toMatchObject({
      kind: 'DryRun',
      effect: 'reload',
      changes: [{ field: 'spec.parameters.work_mem', effect: 'reload' }],
    });
    expect(reload.resource.metadata.generation).toBe(before.metadata.generation + 1);
    const restart = await dry({ spec: { parameters: { work_mem: 8192, max_connections: 42 } } });
    expect(restart.effect).toBe('restart');
    expect(restart.changes).toContainEqual({ field: 'spec.parameters.max_connections', effect: 'restart' });
    expect((await dry({ spec: { storageGB: 11 } })).effect).toBe('none');
    const invalid = await t.request(`${DB}/orders?dryRun=true`, {
      method: 'PATCH',
      json: { spec: { parameters: { work_mem: 1 } } },
    });
    expect(invalid.status).toBe(422);
    const after = await get('orders');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion); // nothing written
    const upgrade = await t.request(`${DB}/orders`, { method: 'PATCH', json: { spec: { version: '16' } } });
    expect(upgrade.status).toBe(422); // major upgrades are not supported in place
  });

  it('reloads reloadable parameters without a restart and restarts for restart-only ones', async () => {
    const u = await uri('orders');
    const pid = await postmasterPid(db);
    await patch('orders', { spec: { parameters: { work_mem: 8192, statement_timeout: 5000 } } });
    await ready('orders');
    expect(await queryFrom(u, '127.0.0.2', 'SHOW work_mem')).toEqual([{ work_mem: '8MB' }]);
    expect(await postmasterPid(db)).toBe(pid);
    expect((await events('orders')).map((e) => e.reason)).toContain('Reloaded');

    await patch('orders', {
      spec: { parameters: { work_mem: 8192, statement_timeout: 5000, max_connections: 42 } },
    });
    await ready('orders');
    expect(await queryFrom(u, '127.0.0.2', 'SHOW max_connections')).toEqual([{ max_connections: '42' }]);
    expect(await postmasterPid(db)).not.toBe(pid);
    expect((await queryFrom(u, '127.0.0.2', 'SELECT name FROM items'))[0]).toEqual({ name: 'kept' });
  });

  it('notices a kill -9 of its server, reports Degraded, restarts it and returns to Ready', async () => {
    const current = await get('orders');
    const phases: string[] = [];
    const abort = new AbortController();
    const watching = readSse(
      `${t.url}${DB}?watch=true&resourceVersion=${current.metadata.resourceVersion}`,
      { authorization: `Bearer ${t.token}` },
      (e) => void phases.push(JSON.parse(e.data).status.phase),
      abort.signal,
    );
    const pid = await postmasterPid(db);
    process.kill(pid, 'SIGKILL');
    await waitFor(
      async () => (phases.includes('Degraded') && phases.at(-1) === 'Ready' ? true : undefined),
      'Degraded then Ready',
    );
    abort.abort();
    await watching;
    expect(await postmasterPid(db)).not.toBe(pid);
    const reasons = (await events('orders')).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['Crashed', 'Restarted']));
    expect(
      (await queryFrom(await uri('orders'), '127.0.0.2', 'SELECT count(*)::int AS n FROM items'))[0],
    ).toEqual({ n: 1 });
  });

  it('keeps the server running, same process, across a restart of Kumo, and adopts it', async () => {
    const pid = await postmasterPid(db);
    await t.kumo.stop();
    expect(() => process.kill(pid, 0)).not.toThrow();
    const again = await startTestKumo(inject('pg'), {
      databaseUrl: t.databaseUrl,
      dataDir: t.dataDir,
      dbPorts: t.dbPorts,
    });
    const stopFirst = t.stop;
    const stopAgain = again.stop;
    t = {
      ...again,
      stop: async () => {
        await stopAgain();
        await stopFirst().catch(() => undefined); // removes the data directory and any leftover server
      },
    };
    await ready('orders');
    expect(await postmasterPid(db)).toBe(pid);
    const restarts = (await events('orders')).filter(
      (e) => e.reason === 'Restarted' || e.reason === 'Started',
    );
    expect(restarts.map((e) => e.message).sort()).toEqual([
      'server restarted after it stopped unexpectedly', // the kill -9
      'server restarted to apply a configuration change', // max_connections
      'server started', // the first start; adoption started nothing
    ]);
  });

  it('stops on spec.stopped and starts again with the data intact', async () => {
    const pid = await postmasterPid(db);
    await patch('orders', { spec: { stopped: true } });
    await waitFor(
      async () => ((await get('orders')).status.phase === 'Stopped' ? true : undefined),
      'Stopped',
    );
    expect(await gone(pid)).toBe(true);
    await patch('orders', { spec: { stopped: false } });
    await ready('orders');
    expect((await queryFrom(await uri('orders'), '127.0.0.2', 'SELECT name FROM items'))[0]).toEqual({
      name: 'kept',
    });
  });

  it('rotates the password: the new one works, the old one stops working', async () => {
    const old = await uri('orders');
    expect((await get('orders')).status.credentialsVersion).toBe(1);
    const rotated = await json(t.request(`${DB}/orders/credentials/rotate`, { method: 'POST' }));
    expect(rotated.version).toBe(2);
    // Status says when the server has the new password; from then on it works.
    await waitFor(
      async () => ((await get('orders')).status.credentialsVersion === 2 ? true : undefined),
      'status.credentialsVersion 2',
    );
    expect(await queryFrom(rotated.uri, '127.0.0.2', 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await expect(queryFrom(old, '127.0.0.2', 'SELECT 1')).rejects.toThrow(/password authentication failed/);
  });

  it('never writes a password into events or the server log', async () => {
    const creds = await json(t.request(`${DB}/orders/credentials`));
    const text =
      JSON.stringify(await events('orders')) +
      (await (await t.request(`${DB}/orders/logs?tail=1000`)).text());
    expect(text.length).toBeGreaterThan(100);
    expect(text).not.toContain(creds.password);
  });

  it('streams new log lines with follow=true', async () => {
    const abort = new AbortController();
    const res = await fetch(`${t.url}${DB}/orders/logs?tail=0&follow=true`, {
      headers: { authorization: `Bearer ${t.token}` },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const reading = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          text += new TextDecoder().decode(value);
        }
      } catch {
        // aborted
      }
    })();
    // Something that makes the server log a line: a refused connection.
    await waitFor(async () => {
      await queryFrom(await uri('orders'), '127.0.0.3', 'SELECT 1').catch(() => undefined);
      return text.includes('no pg_hba.conf entry for host "127.0.0.3"') ? true : undefined;
    }, 'a followed log line');
    abort.abort();
    await reading;
  });

  it('deletes the server, its data and its port, then the resource', async () => {
    const pid = await postmasterPid(db);
    const dir = join(t.dataDir, 'databases', db.metadata.uid);
    expect((await t.request(`${DB}/orders`, { method: 'DELETE' })).status).toBe(202);
    await waitFor(
      async () => ((await t.request(`${DB}/orders`)).status === 404 ? true : undefined),
      'deleted',
    );
    expect(existsSync(dir)).toBe(false);
    expect(await gone(pid)).toBe(true);
    expect(await readdir(join(t.dataDir, 'databases'))).toEqual([]);
  });
});

describe('failures are reported, never hidden', () => {
  it('rejects an unknown version, a parameter out of range and a bad CIDR with the field named', async () => {
    const spec = { engine: 'postgres', version: '15', plan: 'small' };
    const cases: Array<[unknown, string]> = [
      [{ ...spec, version: '9' }, 'spec.version'],
      [{ ...spec, plan: 'huge' }, 'spec.plan'],
      [{ ...spec, parameters: { work_mem: 1 } }, 'spec.parameters.work_mem'],
      [{ ...spec, parameters: { fsync: false } }, 'spec.parameters.fsync'],
      [{ ...spec, storageGB: 10_000 }, 'spec.storageGB'],
      [{ ...spec, acl: [{ cidr: '127.0.0.1/33' }] }, 'spec.acl.0.cidr'],
      [{ ...spec, target: 'mars' }, 'spec.target'],
    ];
    for (const [body, field] of cases) {
      const res = await t.request(DB, { method: 'POST', json: { metadata: { name: 'bad' }, spec: body } });
      expect(res.status, field).toBe(422);
      expect(((await res.json()) as any).errors.map((e: { field: string }) => e.field)).toContain(field);
    }
  });

  it('retries a start that fails, says why with the log line, and recovers once the cause is gone', async () => {
    await t.request(DB, {
      method: 'POST',
      json: { metadata: { name: 'fragile' }, spec: { engine: 'postgres', version: '15', plan: 'small' } },
    });
    const fragile = await ready('fragile');
    const data = join(t.dataDir, 'databases', fragile.metadata.uid, 'data');
    const conf = join(data, 'postgresql.conf');
    const original = await readFile(conf, 'utf8');
    await writeFile(conf, original + '\nthis is not a setting\n');
    process.kill(Number((await readFile(join(data, 'postmaster.pid'), 'utf8')).split('\n')[0]), 'SIGKILL');
    const failing = await waitFor(async () => {
      const d = await get('fragile');
      const cond = d.status.conditions.find((c: { type: string }) => c.type === 'Ready');
      return cond?.reason === 'StartFailed' ? d : undefined;
    }, 'StartFailed');
    expect(failing.status.phase).toBe('Degraded'); // not given up on: it is being retried
    const condition = failing.status.conditions.find((c: { type: string }) => c.type === 'Ready');
    expect(condition.message).toMatch(/syntax error|postgresql.conf/);
    // The cause goes: no spec change, and it heals by itself.
    await writeFile(conf, original);
    const healed = await ready('fragile');
    expect(healed.metadata.generation).toBe(fragile.metadata.generation);
    await t.request(`${DB}/fragile`, { method: 'DELETE' });
    await waitFor(
      async () => ((await t.request(`${DB}/fragile`)).status === 404 ? true : undefined),
      'fragile deleted',
    );
  });

  it('ends a server that keeps crashing in Error with its log, and tries it again later by itself', async () => {
    await t.request(DB, {
      method: 'POST',
      json: { metadata: { name: 'flaky' }, spec: { engine: 'postgres', version: '15', plan: 'small' } },
    });
    const flaky = await ready('flaky');
    const pidFile = join(t.dataDir, 'databases', flaky.metadata.uid, 'data', 'postmaster.pid');
    const livePid = async () => {
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]);
      return pid > 0 && (await alive(pid)) ? pid : undefined;
    };
    let pid = await livePid();
    for (let crash = 1; crash <= 5; crash++) {
      process.kill(pid!, 'SIGKILL');
      if (crash === 5) break;
      // Killed once it runs again and is Ready: a kill while it starts is a failed start, not a crash.
      const killed = pid;
      pid = await waitFor(async () => {
        const next = await livePid();
        return next && next !== killed && (await get('flaky')).status.phase === 'Ready' ? next : undefined;
      }, `restart after crash ${crash}`);
    }
    const broken = await waitFor(async () => {
      const d = await get('flaky');
      return d.status.phase === 'Error' ? d : undefined;
    }, 'Error');
    const condition = broken.status.conditions.find((c: { type: string }) => c.type === 'Ready');
    expect(condition.reason).toBe('CrashLoop');
    expect(condition.message).toMatch(/crashed 5 times in 10 minutes; Kumo tries again at/);
    expect((await events('flaky')).map((e) => e.reason)).toEqual(
      expect.arrayContaining(['Crashed', 'CrashLoop']),
    );
    // The test's Kumo tries a crash loop again after 3 s (5 minutes by default): the cause is gone.
    const recovered = await ready('flaky');
    expect(recovered.metadata.generation).toBe(flaky.metadata.generation);
    // It crashes again within the 10 minutes: a crash loop again, now waiting twice as long (6 s).
    const pidAgain = await waitFor(async () => await livePid(), 'a running server');
    process.kill(pidAgain, 'SIGKILL');
    const again = await waitFor(async () => {
      const d = await get('flaky');
      return d.status.phase === 'Error' ? d : undefined;
    }, 'Error again');
    expect(again.status.conditions.find((c: { type: string }) => c.type === 'Ready').message).toMatch(
      /crashed 6 times in 10 minutes/,
    );
    await ready('flaky');
    await t.request(`${DB}/flaky`, { method: 'DELETE' });
    await waitFor(
      async () => ((await t.request(`${DB}/flaky`)).status === 404 ? true : undefined),
      'flaky deleted',
    );
  });

  it('deletes a database that is still provisioning', async () => {
    const res = await t.request(DB, {
      method: 'POST',
      json: { metadata: { name: 'hasty' }, spec: { engine: 'postgres', version: '15', plan: 'small' } },
    });
    const { uid } = ((await res.json()) as any).metadata;
    expect((await t.request(`${DB}/hasty`, { method: 'DELETE' })).status).toBe(202);
    await waitFor(
      async () => ((await t.request(`${DB}/hasty`)).status === 404 ? true : undefined),
      'hasty deleted',
    );
    await new Promise((r) => setTimeout(r, 500)); // a reconcile that was already running must not re-create it
    expect(existsSync(join(t.dataDir, 'databases', uid))).toBe(false);
  });

  it('reports storage over the quota in a condition and an event, and keeps the database running', async () => {
    await t.request(DB, {
      method: 'POST',
      json: {
        metadata: { name: 'full' },
        spec: { engine: 'postgres', version: '15', plan: 'small', storageGB: 1 },
      },
    });
    const full = await ready('full');
    const filler = join(t.dataDir, 'databases', full.metadata.uid, 'data', 'filler');
    execFileSync('fallocate', ['-l', '1100M', filler]);
    try {
      await patch('full', { metadata: { labels: { touched: 'yes' } } }); // any write wakes the agent, which measures
      const over = await waitFor(async () => {
        const d = await get('full');
        return d.status.conditions.find(
          (c: { type: string; status: string }) => c.type === 'StorageWithinQuota' && c.status === 'False',
        )
          ? d
          : undefined;
      }, 'QuotaExceeded');
      expect(over.status.usage.storageBytes).toBeGreaterThan(1024 ** 3);
      expect(over.status.phase).toBe('Ready');
      expect((await events('full')).map((e) => e.reason)).toContain('QuotaExceeded');
      expect(
        await queryFrom(
          (await json(t.request(`${DB}/full/credentials`))).uri.replace('127.0.0.1', 'localhost'),
          '127.0.0.1',
          'SELECT 1',
        ).catch((e: Error) => e.message),
      ).toMatch(/pg_hba/); // running, still guarded
    } finally {
      await rm(filler, { force: true });
    }
    await t.request(`${DB}/full`, { method: 'DELETE' });
  });

  it('reports a data directory it cannot write as an error with the path, and stays up', async () => {
    const broken = await startTestKumo(inject('pg'));
    try {
      await writeFile(join(broken.dataDir, 'databases'), 'not a directory');
      await broken.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'o' }, spec: {} } });
      await broken.request('/v1/projects', {
        method: 'POST',
        json: { metadata: { name: 'p' }, spec: { org: 'o' } },
      });
      await broken.request('/v1/projects/p/databases', {
        method: 'POST',
        json: { metadata: { name: 'nowhere' }, spec: { engine: 'postgres', version: '15', plan: 'small' } },
      });
      const failed = await waitFor(async () => {
        const d = (await (await broken.request('/v1/projects/p/databases/nowhere')).json()) as any;
        return d.status.conditions?.find((c: { reason: string }) => c.reason === 'DataDirUnwritable');
      }, 'DataDirUnwritable');
      expect(failed.message).toContain(join(broken.dataDir, 'databases'));
      expect((await broken.request('/readyz')).status).toBe(200);
    } finally {
      await broken.stop();
    }
  });

  it('reports an exhausted port range in status and recovers when a port frees up', async () => {
    const small = await startTestKumo(inject('pg'), { dbPorts: '32700-32700' });
    try {
      await small.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'o' }, spec: {} } });
      await small.request('/v1/projects', {
        method: 'POST',
        json: { metadata: { name: 'p' }, spec: { org: 'o' } },
      });
      const spec = { engine: 'postgres', version: '15', plan: 'small' };
      await small.request('/v1/projects/p/databases', {
        method: 'POST',
        json: { metadata: { name: 'one' }, spec },
      });
      await small.request('/v1/projects/p/databases', {
        method: 'POST',
        json: { metadata: { name: 'two' }, spec },
      });
      const statusOf = async (name: string) =>
        (await small.request(`/v1/projects/p/databases/${name}`).then((r) => r.json())) as any;
      const stuck = await waitFor(async () => {
        for (const name of ['one', 'two']) {
          const d = await statusOf(name);
          if (d.status.conditions?.some((c: { reason: string }) => c.reason === 'PortsExhausted'))
            return name;
        }
        return undefined;
      }, 'PortsExhausted');
      const other = stuck === 'one' ? 'two' : 'one';
      expect((await statusOf(other)).status.phase).not.toBe('Error');
      await small.request(`/v1/projects/p/databases/${other}`, { method: 'DELETE' });
      await waitFor(
        async () => ((await statusOf(stuck)).status.phase === 'Ready' ? true : undefined),
        'recovered after a port freed',
        60_000,
      );
    } finally {
      await small.stop();
    }
  });
});
