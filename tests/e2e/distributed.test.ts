import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../packages/server/src/testing/wait.js';
import {
  type ApiResponse,
  type Cluster,
  type DatabaseCredentials,
  type KumoProcess,
  canRunCluster,
  startCluster,
} from '../support/distributed-cluster.js';

// Issue 14's proof: Kumo on several real hosts. Host `core` runs the shared store, NATS and two
// API replicas; hosts `a` and `b` each run the agent of the target of that name; every request
// and database connection comes from host `client`. Leases last 4 s (KUMO_AGENT_LEASE_SECONDS) so
// that losing an agent shows within seconds.

const LEASE_MS = 4000;
/** Provisioning two hosts' first databases (a template initdb each) on a loaded machine. */
const READY_MS = 120_000;
/** Detection of a lost agent is within ~1.5 leases; recovery within a few more. */
const NOTICE_MS = 45_000;
const P = '/v1/projects/shop/databases';

const can = canRunCluster();

describe.skipIf(!can.ok)(`Kumo on several hosts${can.ok ? '' : ` (skipped: ${can.reason})`}`, () => {
  let cluster: Cluster;
  const agents: Record<string, KumoProcess> = {};
  const tokens: Record<string, string> = {};
  let client: string;

  beforeAll(async () => {
    cluster = await startCluster(['a', 'b']);
    client = cluster.lab.hosts.client!.address;
    await ok(cluster.api('POST', '/v1/orgs', { metadata: { name: 'acme' }, spec: {} }));
    await ok(cluster.api('POST', '/v1/projects', { metadata: { name: 'shop' }, spec: { org: 'acme' } }));
    // As an operator would: `kumo target create` prints the agent's token.
    await Promise.all(
      ['a', 'b'].map(async (target) => {
        const created = await cluster.cli([
          'target',
          'create',
          target,
          '--driver',
          'local',
          '--label',
          `zone=${target}`,
        ]);
        expect(created, created.stderr).toMatchObject({ code: 0 });
        // "target/a created", then "Agent token for target a (…):" and the token, indented.
        const token = new RegExp(`Agent token for target ${target}\\b.*:\\n +(\\S+)`).exec(created.stdout);
        expect(token?.[1], created.stdout).toMatch(/^kumo_/);
        tokens[target] = token![1]!;
      }),
    );
    await Promise.all(
      ['a', 'b'].map(async (target) => {
        agents[target] = await cluster.startAgent({ host: target, target, token: tokens[target]! });
      }),
    );
    for (const target of ['a', 'b']) await targetReady(target);
  }, 300_000);

  afterAll(async () => {
    await cluster?.close();
    if (cluster) {
      const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
      expect(left).not.toContain(cluster.lab.id);
    }
  });

  it('places databases on both agent hosts and serves them, their ACLs and their logs across hosts', async () => {
    const acl = [{ cidr: `${client}/32`, description: 'the client' }];
    const alpha = await ok(createDatabase('alpha', { targetSelector: { zone: 'a' }, acl }));
    const beta = await ok(createDatabase('beta', { target: 'b', acl }));
    // Neither target nor selector: placement picks a Ready target and records it. Its ACL leaves
    // the client out.
    const gamma = await ok(
      createDatabase('gamma', { acl: [{ cidr: `${cluster.lab.hosts.core!.address}/32` }] }),
    );
    expect(alpha.spec.target).toBe('a');
    expect(beta.spec.target).toBe('b');
    expect(['a', 'b']).toContain(gamma.spec.target);

    await Promise.all(['alpha', 'beta', 'gamma'].map((name) => databaseReady(name, READY_MS)));
    expect((await getDatabase('gamma')).spec.target).toBe(gamma.spec.target);

    for (const [name, host] of [
      ['alpha', 'a'],
      ['beta', 'b'],
    ] as const) {
      const credentials = await credentialsOf(name);
      expect(credentials.host).toBe(cluster.lab.hosts[host]!.address);
      // The server answering is on the agent's host, and sees the client's own address.
      const result = await cluster.psql(
        credentials,
        'SELECT host(inet_server_addr()), host(inet_client_addr())',
      );
      expect(result, result.stderr).toMatchObject({ code: 0 });
      expect(result.stdout.trim()).toBe(`${credentials.host}|${client}`);

      const logs = await cluster.api('GET', `${P}/${name}/logs?tail=5`);
      expect(logs.status, logs.text).toBe(200);
      const lines = logs.text.split('\n').filter(Boolean);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.length).toBeLessThanOrEqual(5);
    }

    const refused = await cluster.psql(await credentialsOf('gamma'), 'SELECT 1');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`no pg_hba.conf entry for host "${client}"`);
  });

  it('keeps a database serving while its agent is killed, and the restarted agent adopts the same server', async () => {
    const uid = (await getDatabase('alpha')).metadata.uid as string;
    const dataDir = cluster.agentDataDir('a', 'a');
    const pid = postmasterPid(dataDir, uid);
    expect(pidsOfHost('a')).toContain(pid);
    const fence = (await getTarget('a')).status.agent.fence as number;

    await agents.a!.kill();
    const credentials = await credentialsOf('alpha');
    expect(await cluster.psql(credentials, 'SELECT 1'), 'right after the kill').toMatchObject({ code: 0 });

    const lost = await until('target a to be AgentLost', async () => {
      const target = await getTarget('a');
      const ready = condition(target, 'Ready');
      return ready?.status === 'False' && ready.reason === 'AgentLost' ? target : undefined;
    });
    expect(lost.status.phase).toBe('Error');
    const unknown = await until('alpha to be TargetUnreachable', async () => {
      const db = await getDatabase('alpha');
      const ready = condition(db, 'Ready');
      return db.status.phase === 'Unknown' &&
        ready?.status === 'Unknown' &&
        ready.reason === 'TargetUnreachable'
        ? db
        : undefined;
    });
    expect(unknown.status.phase).toBe('Unknown');
    const during = await cluster.psql(credentials, 'SELECT 1');
    expect(during, 'while the agent is away').toMatchObject({ code: 0, stdout: '1\n' });
    // Its host cannot be asked for logs now, and says so.
    const logs = await cluster.request(cluster.apiUrls[0]!, 'GET', `${P}/alpha/logs?tail=5`);
    expect(logs.status).toBe(503);
    expect(logs.body.detail).toContain('Target a');
    // New databases go where an agent is.
    const placed = await ok(createDatabase('delta', { acl: [{ cidr: `${client}/32` }] }));
    expect(placed.spec.target).toBe('b');
    await ok(cluster.api('DELETE', `${P}/delta`));

    agents.a = await cluster.startAgent({ host: 'a', target: 'a', token: tokens.a!, dataDir });
    await databaseReady('alpha', NOTICE_MS);
    // The same installation (its data directory) took its lease back, with the next fence.
    expect((await targetReady('a')).status.agent.fence).toBeGreaterThan(fence);
    expect(postmasterPid(dataDir, uid), 'the same server, adopted').toBe(pid);
    expect(pidsOfHost('a')).toContain(pid);
    expect(await cluster.psql(credentials, 'SELECT 1')).toMatchObject({ code: 0 });
    // The restarted agent registered its gateway anew.
    const back = await cluster.api('GET', `${P}/alpha/logs?tail=5`);
    expect(back.status, back.text).toBe(200);
    await until('delta to be deleted', async () =>
      (await cluster.api('GET', `${P}/delta`)).status === 404 ? true : undefined,
    );
  });

  it('marks a host unreachable while its link is cut, and recovers once it is back without restarting anything', async () => {
    const uid = (await getDatabase('beta')).metadata.uid as string;
    const pid = postmasterPid(cluster.agentDataDir('b', 'b'), uid);
    const agentPid = agents.b!.pid;

    await cluster.lab.cut('b');
    try {
      await until('target b to be AgentLost', async () => {
        const ready = condition(await getTarget('b'), 'Ready');
        return ready?.status === 'False' && ready.reason === 'AgentLost' ? true : undefined;
      });
      await until('beta to be TargetUnreachable', async () => {
        const db = await getDatabase('beta');
        const ready = condition(db, 'Ready');
        return db.status.phase === 'Unknown' && ready?.reason === 'TargetUnreachable' ? true : undefined;
      });
    } finally {
      await cluster.lab.restore('b');
    }
    await databaseReady('beta', NOTICE_MS);
    await targetReady('b');
    expect(agents.b!.running()).toBe(true);
    expect(agents.b!.pid).toBe(agentPid);
    expect(postmasterPid(cluster.agentDataDir('b', 'b'), uid)).toBe(pid);
    expect(await cluster.psql(await credentialsOf('beta'), 'SELECT 1')).toMatchObject({ code: 0 });
  });

  it('loses no acknowledged write while NATS restarts mid-stream, and the agent catches up', async () => {
    // Writes 6 to 12 are made while NATS is down; nothing is written after it is back until the
    // agent has applied them: it catches up on what it was not told at the time.
    const first = await writeStream('alpha', 'n', 0, 13, { 6: () => cluster.stopNats() });
    // Still ready (writes commit), and saying that the bus is away, for monitoring to see.
    const readiness = (bus: string) => async () => {
      const res = await cluster.api('GET', '/readyz');
      return res.status === 200 && res.body?.bus === bus ? res.body : undefined;
    };
    await until('/readyz to say the bus is reconnecting', readiness('reconnecting'));
    await cluster.startNats();
    await until('/readyz to say the bus is connected again', readiness('connected'));
    await databaseReady('alpha', NOTICE_MS);
    const then = await getDatabase('alpha');
    expect(then.spec.acl[0].description).toBe('n write 12');
    const rest = await writeStream('alpha', 'n', 13, 20, {});
    // The API writes to the store (and its outbox); NATS is not on the write path.
    expect([...first.failed, ...rest.failed]).toEqual([]);
    await expectWritesVisible('alpha', 'n', [...first.acknowledged, ...rest.acknowledged]);
    await databaseReady('alpha', NOTICE_MS);
    expect(await cluster.psql(await credentialsOf('alpha'), 'SELECT 1')).toMatchObject({ code: 0 });
  });

  it('loses no acknowledged write when an API replica is killed mid-stream, and the agents keep working', async () => {
    const fences = {
      a: (await getTarget('a')).status.agent.fence,
      b: (await getTarget('b')).status.agent.fence,
    };
    const [killed, survivor] = cluster.servers;
    const failovers = cluster.failovers.length;
    const writes = await writeStream('beta', 'm', 0, 20, { 8: () => void killed!.kill() });
    expect(killed!.running()).toBe(false);
    // The client tried the other replica for every request the killed one did not answer.
    expect(cluster.failovers.length).toBeGreaterThan(failovers);
    expect(writes.failed).toEqual([]);
    await expectWritesVisible('beta', 'm', writes.acknowledged, [cluster.apiUrls[1]!]);
    await databaseReady('beta', NOTICE_MS);
    // Two more leases: the agents renewed theirs through the survivor all along.
    await sleep(2 * LEASE_MS);
    for (const target of ['a', 'b'] as const) {
      const status = (await getTarget(target)).status;
      expect(condition({ status }, 'Ready')).toMatchObject({ status: 'True' });
      expect(status.agent.fence, `target ${target} kept its lease`).toBe(fences[target]);
    }
    expect(survivor!.running()).toBe(true);
  });

  it('keeps a second agent of a target waiting, starting nothing, while the first holds the lease', async () => {
    const holder = (await getTarget('b')).status.agent.id;
    const token = (await ok(cluster.api('POST', '/v1/targets/b/agent-tokens'))).token as string;
    const dataDir = cluster.agentDataDir('client', 'b');
    const second = await cluster.startAgent({
      host: 'client',
      target: 'b',
      token,
      dataDir,
      dbPorts: '25100-25119',
    });
    await until('the second agent to say the lease is held', async () =>
      second.output().includes('Target b is served by agent') ? true : undefined,
    );
    await sleep(2 * LEASE_MS + 1000);
    expect(second.running()).toBe(true);
    expect(second.output()).not.toContain('"msg":"serving the target"');
    expect((await getTarget('b')).status.agent.id).toBe(holder);
    const instances = join(dataDir, 'databases');
    expect(existsSync(instances) ? readdirSync(instances) : []).toEqual([]);
    expect(pidsOfHost('client').filter((pid) => executableOf(pid).endsWith('/postgres'))).toEqual([]);
    await databaseReady('beta', NOTICE_MS);
    await second.stop();
    expect(await second.exited).toBe(0);
  });

  // ---- helpers -------------------------------------------------------------------------------

  function createDatabase(name: string, spec: Record<string, unknown>) {
    return cluster.api('POST', P, {
      metadata: { name },
      spec: { engine: 'postgres', version: '15', plan: 'small', ...spec },
    });
  }

  async function getDatabase(name: string): Promise<any> {
    return ok(cluster.api('GET', `${P}/${name}`));
  }

  async function getTarget(name: string): Promise<any> {
    return ok(cluster.api('GET', `/v1/targets/${name}`));
  }

  async function credentialsOf(name: string): Promise<DatabaseCredentials> {
    return ok(cluster.api('GET', `${P}/${name}/credentials`));
  }

  /** Done as a user reads it: Ready, and the status describes the current spec. */
  async function databaseReady(name: string, timeoutMs: number): Promise<any> {
    return until(
      `database ${name} to be Ready`,
      async () => {
        const db = await getDatabase(name);
        return db.status?.phase === 'Ready' &&
          condition(db, 'Ready')?.status === 'True' &&
          db.status.observedGeneration === db.metadata.generation
          ? db
          : undefined;
      },
      timeoutMs,
      () => getDatabase(name).then((db) => JSON.stringify(db.status)),
    );
  }

  async function targetReady(name: string): Promise<any> {
    return until(
      `target ${name} to be Ready`,
      async () => {
        const target = await getTarget(name);
        return condition(target, 'Ready')?.status === 'True' &&
          target.status.engines?.some((e: { engine: string }) => e.engine === 'postgres')
          ? target
          : undefined;
      },
      NOTICE_MS,
      () => getTarget(name).then((t) => JSON.stringify(t.status)),
    );
  }

  /**
   * Writes from to to-1 to a database, one after the other, 250 ms apart: write i adds label
   * `<prefix><i>` and sets its ACL entry's description to `<prefix> write <i>` (a new generation).
   * hooks[i] runs before write i.
   */
  async function writeStream(
    name: string,
    prefix: string,
    from: number,
    to: number,
    hooks: Record<number, () => Promise<void> | void>,
  ): Promise<{ acknowledged: number[]; failed: string[] }> {
    const acknowledged: number[] = [];
    const failed: string[] = [];
    for (let i = from; i < to; i++) {
      await hooks[i]?.();
      const patch = {
        metadata: { labels: { [`${prefix}${i}`]: String(i) } },
        spec: { acl: [{ cidr: `${client}/32`, description: `${prefix} write ${i}` }] },
      };
      try {
        const res = await cluster.api('PATCH', `${P}/${name}`, patch);
        if (res.status >= 200 && res.status < 300) acknowledged.push(i);
        else failed.push(`write ${i}: ${res.status} ${res.text}`);
      } catch (err) {
        failed.push(`write ${i}: ${(err as Error).message}`);
      }
      await sleep(250);
    }
    return { acknowledged, failed };
  }

  /** Every acknowledged write is there, read from each replica given (default: all). */
  async function expectWritesVisible(
    name: string,
    prefix: string,
    acknowledged: number[],
    replicas = cluster.apiUrls,
  ): Promise<void> {
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const url of replicas) {
      const db = await ok(cluster.request(url, 'GET', `${P}/${name}`));
      for (const i of acknowledged)
        expect(db.metadata.labels, `${url}`).toHaveProperty(`${prefix}${i}`, String(i));
      expect(db.spec.acl).toEqual([
        { cidr: `${client}/32`, description: `${prefix} write ${acknowledged.at(-1)}` },
      ]);
    }
  }

  /** Polls fn until it returns a value; on timeout, fails with what describe() says of the state then. */
  async function until<T>(
    what: string,
    fn: () => Promise<T | undefined>,
    timeoutMs = NOTICE_MS,
    describeState?: () => Promise<string>,
  ): Promise<T> {
    try {
      return await waitFor(
        async () => {
          const value = await fn();
          if (value === undefined) await sleep(400);
          return value;
        },
        what,
        timeoutMs,
      );
    } catch (err) {
      const state = await describeState?.().catch((e: Error) => `(unreadable: ${e.message})`);
      const tails = [...cluster.servers, ...Object.values(agents)]
        .map((agent) => `--- ${agent.name}:\n${agent.output().split('\n').slice(-15).join('\n')}`)
        .join('\n');
      throw new Error(`${(err as Error).message}${state ? `\nstate: ${state}` : ''}\n${tails}`, {
        cause: err,
      });
    }
  }

  /** The postmaster's pid of the instance uid in an agent's data directory (postmaster.pid). */
  function postmasterPid(agentDataDir: string, uid: string): number {
    const file = join(agentDataDir, 'databases', uid, 'data', 'postmaster.pid');
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    expect(pid).toBeGreaterThan(0);
    return pid;
  }

  /** The processes in host's network namespace. */
  function pidsOfHost(host: string): number[] {
    return execFileSync('ip', ['netns', 'pids', cluster.lab.hosts[host]!.ns], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  }
});

/** The program pid runs ('' once it has ended). */
function executableOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

function condition(resource: any, type: string): { status: string; reason?: string } | undefined {
  return resource?.status?.conditions?.find((c: { type: string }) => c.type === type);
}

async function ok(response: Promise<ApiResponse>): Promise<any> {
  const res = await response;
  if (res.status >= 300) throw new Error(`${res.status}: ${res.text}`);
  return res.body;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
