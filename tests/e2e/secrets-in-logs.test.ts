import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killManagedServers } from '../../packages/server/src/testing/test-kumo.js';

const KUMO = join(import.meta.dirname, '../../packages/cli/bin/kumo.js');
let dir: string;
afterAll(async () => {
  if (dir) {
    await killManagedServers(join(dir, 'data'));
    await rm(dir, { recursive: true, force: true });
  }
});

/** Every file under root, recursively. */
async function files(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('secrets in logs', () => {
  it('no password or token secret appears in any log Kumo or its servers write, even at trace level', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kumo-secrets-'));
    await chmod(dir, 0o711);
    const dataDir = join(dir, 'data');
    const child = spawn(
      process.execPath,
      [KUMO, 'up', '--data-dir', dataDir, '--port', '0', '--log-level', 'trace', '--db-ports', '32600-32649'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let logs = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => stdout.includes('Press Ctrl-C') && resolve());
      child.once('exit', (code) => reject(new Error(`kumo up exited with ${code}: ${logs}`)));
    });
    const url = /API: +(\S+)/.exec(stdout)![1]!;
    const admin = /Admin token: +(\S+)/.exec(stdout)![1]!;
    const call = async (method: string, path: string, body?: unknown): Promise<any> => {
      const res = await fetch(url + path, {
        method,
        headers: {
          authorization: `Bearer ${admin}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return res.json();
    };
    await call('POST', '/v1/orgs', { metadata: { name: 'acme' }, spec: {} });
    await call('POST', '/v1/projects', { metadata: { name: 'shop' }, spec: { org: 'acme' } });
    for (const [name, engine, version] of [
      ['orders', 'postgres', '15'],
      ['cache', 'redis', '7'],
    ]) {
      await call('POST', '/v1/projects/shop/databases', {
        metadata: { name },
        spec: {
          engine,
          version,
          plan: 'small',
          parameters: engine === 'postgres' ? { log_statement: 'all' } : {},
        },
      });
    }
    const secrets: string[] = [admin];
    for (const name of ['orders', 'cache']) {
      for (
        let i = 0;
        i < 100 && (await call('GET', `/v1/projects/shop/databases/${name}`)).status.phase !== 'Ready';
        i++
      )
        await new Promise((r) => setTimeout(r, 100));
      secrets.push((await call('GET', `/v1/projects/shop/databases/${name}/credentials`)).password);
      secrets.push((await call('POST', `/v1/projects/shop/databases/${name}/credentials/rotate`)).password);
    }
    secrets.push((await call('POST', '/v1/tokens', { name: 'ci' })).token);
    // A customer's personal token, and a service token it makes, used for real.
    await call('POST', '/v1/users', { name: 'alice' });
    await call('PUT', '/v1/orgs/acme/members/alice', { role: 'admin' });
    const alice = (await call('POST', '/v1/tokens', { name: 'laptop', user: 'alice' })).token;
    const service = await fetch(`${url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'deploy', service: true, org: 'acme', role: 'developer' }),
    });
    const serviceToken = ((await service.json()) as { token: string }).token;
    const used = await fetch(`${url}/v1/projects/shop/databases`, {
      headers: { authorization: `Bearer ${serviceToken}` },
    });
    expect(used.status).toBe(200);
    secrets.push(alice, serviceToken);
    await new Promise((r) => setTimeout(r, 1500)); // rotations applied
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;

    expect(secrets.every((s) => typeof s === 'string' && s.length >= 20)).toBe(true);
    const logFiles = (await files(dataDir)).filter((f) => f.endsWith('.log'));
    expect(logFiles.length).toBeGreaterThanOrEqual(3); // the store's, postgres's, redis's (and the ACL proxy's)
    const texts: Array<[string, string]> = [
      ['kumo stderr', logs],
      ...(await Promise.all(logFiles.map(async (f) => [f, await readFile(f, 'utf8')] as [string, string]))),
    ];
    expect(logs.length).toBeGreaterThan(500); // trace logging did log
    for (const [where, text] of texts) {
      for (const secret of secrets) expect(text.includes(secret), `a secret in ${where}`).toBe(false);
    }
    // With log_statement=all PostgreSQL logged statements, yet not the ones that set passwords.
    expect(texts.some(([, text]) => text.includes('LOG:  statement:'))).toBe(true);
  });
});
