import { type ChildProcess, spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const KUMO = join(import.meta.dirname, '../../packages/cli/bin/kumo.js');
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-e2e-'));
  await chmod(dir, 0o711);
  dirs.push(dir);
  return join(dir, 'data');
}

interface Running {
  child: ChildProcess;
  url: string;
  token: string;
  stdout: () => string;
  /** The exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals | null>;
}

/** Starts `kumo up` as a user would and waits until it says it is up. */
async function kumoUp(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [KUMO, 'up', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  await Promise.race([
    new Promise<void>((resolve) => child.stdout!.on('data', () => out.includes('Press Ctrl-C') && resolve())),
    exited.then((code) => Promise.reject(new Error(`kumo up exited with ${code}:\n${out}\n${err}`))),
  ]);
  const url = /API: +(\S+)/.exec(out)![1]!;
  // Printed when it is created; on later starts, read from the file it names, as a user would.
  const printed = /Admin token: +(\S+)/.exec(out)?.[1];
  const token = printed ?? (await readFile(/Token file: +(\S+)/.exec(out)![1]!, 'utf8')).trim();
  return { child, url, token, stdout: () => out, exited };
}

async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [KUMO, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}

function postgresRunningOn(dataDir: string): boolean {
  try {
    return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .some((l) => l.includes(`${dataDir}/store/pgdata`));
  } catch {
    return false;
  }
}

describe('kumo up', () => {
  it('starts on a fresh data directory, serves the API with the admin token, stops cleanly on Ctrl-C and finds everything again', async () => {
    const dataDir = await tempDir();
    const first = await kumoUp(['--data-dir', dataDir, '--port', '0']);
    expect(first.stdout()).toContain('(new)');
    const tokenFile = join(dataDir, 'admin-token');
    expect((await readFile(tokenFile, 'utf8')).trim()).toBe(first.token);
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);

    const headers = { authorization: `Bearer ${first.token}`, 'content-type': 'application/json' };
    const created = await fetch(`${first.url}/v1/orgs`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ metadata: { name: 'acme' }, spec: {} }),
    });
    expect(created.status).toBe(201);
    const uid = ((await created.json()) as any).metadata.uid;
    expect((await fetch(`${first.url}/v1/orgs`)).status).toBe(401);
    const audit = (await (
      await fetch(`${first.url}/v1/audit?kind=Org&name=acme`, { headers })
    ).json()) as any;
    expect(audit.items.find((e: { action: string }) => e.action === 'create')).toMatchObject({
      actor: 'operator:admin',
      source: expect.stringMatching(/127\.0\.0\.1/),
    });
    const target = (await (await fetch(`${first.url}/v1/targets/local`, { headers })).json()) as any;
    expect(target.spec.driver).toBe('local');

    // A second Kumo on the same data directory is refused while the first runs.
    const clash = await run(['up', '--data-dir', dataDir, '--port', '0']);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain('Another Kumo');

    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    expect(first.stdout()).toContain('Kumo stopped.');
    expect(postgresRunningOn(dataDir)).toBe(false);

    // Later starts name the token's file; its secret is printed only when it is created.
    const second = await kumoUp(['--data-dir', dataDir, '--port', '0']);
    expect(second.token).toBe(first.token);
    expect(second.stdout()).not.toContain('(new)');
    expect(second.stdout()).not.toContain(first.token);
    expect(second.stdout()).toContain(`Token file:  ${tokenFile}`);
    // The login line it prints works as printed, pasted into a shell.
    const login = /Log in: +(kumo login .*)$/m.exec(second.stdout())![1]!;
    const config = join(dataDir, 'cli-config.json');
    execFileSync('sh', ['-c', login.replace(/^kumo /, `'${process.execPath}' '${KUMO}' `)], {
      env: { ...process.env, KUMO_CONFIG: config },
      stdio: 'pipe',
    });
    expect(JSON.parse(await readFile(config, 'utf8')).contexts).not.toEqual({});
    const org = (await (await fetch(`${second.url}/v1/orgs/acme`, { headers })).json()) as any;
    expect(org.metadata.uid).toBe(uid);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('adopts its store after being killed with SIGKILL, losing nothing acknowledged', async () => {
    const dataDir = await tempDir();
    const first = await kumoUp(['--data-dir', dataDir, '--port', '0']);
    const headers = { authorization: `Bearer ${first.token}`, 'content-type': 'application/json' };
    for (const name of ['a', 'b', 'c']) {
      expect(
        (
          await fetch(`${first.url}/v1/orgs`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ metadata: { name }, spec: {} }),
          })
        ).status,
      ).toBe(201);
    }
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await kumoUp(['--data-dir', dataDir, '--port', '0']);
    const list = (await (await fetch(`${second.url}/v1/orgs`, { headers })).json()) as any;
    expect(list.items.map((o: { metadata: { name: string } }) => o.metadata.name)).toEqual(['a', 'b', 'c']);
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
  });

  it('stops cleanly when whatever read its output has gone (a closed terminal or log pipe)', async () => {
    const dataDir = await tempDir();
    const up = await kumoUp(['--data-dir', dataDir, '--port', '0', '--log-level', 'info']);
    up.child.stdout!.destroy();
    up.child.stderr!.destroy();
    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
    expect(postgresRunningOn(dataDir)).toBe(false);
  });

  it('explains, without a stack trace, when no PostgreSQL binaries can be found', async () => {
    const dataDir = await tempDir();
    const result = await run(['up', '--data-dir', dataDir, '--port', '0'], {
      KUMO_PG_BIN: '/nonexistent/bin',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('No PostgreSQL server binaries');
    expect(result.stderr).toContain('apt-get install postgresql');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('rejects a bad port with a clear message', async () => {
    const result = await run(['up', '--port', 'seventy']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('must be a port number');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
