import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parkedDatabase } from '../../packages/server/src/testing/tenants.js';
import { type TestKumo, startTestKumo } from '../../packages/server/src/testing/test-kumo.js';

// Tab completion as a shell gets it: the real `kumo` (and the real bash, zsh, fish where installed)
// against a real Kumo whose databases are accepted on an agentless target and never provisioned.
const KUMO = join(import.meta.dirname, '../../packages/cli/bin/kumo.js');
let t: TestKumo;
let home: string;
let bin: string;
let closedUrl: string;
let silent: Server;
let silentUrl: string;
const held: Socket[] = [];

beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
  home = await mkdtemp(join(tmpdir(), 'kumo-completion-'));
  bin = join(home, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'kumo'), `#!/bin/sh\nexec "${process.execPath}" "${KUMO}" "$@"\n`);
  await chmod(join(bin, 'kumo'), 0o755);
  const op = async (path: string, json: unknown) => {
    const res = await t.request(path, { method: 'POST', json });
    if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  };
  await op('/v1/targets', { metadata: { name: 'parked' }, spec: { driver: 'kubernetes' } });
  await op('/v1/orgs', { metadata: { name: 'acme' }, spec: {} });
  for (const project of ['shop', 'other'])
    await op('/v1/projects', { metadata: { name: project }, spec: { org: 'acme' } });
  for (const [project, name] of [
    ['shop', 'orders'],
    ['shop', 'origins'],
    ['shop', 'ledger'],
    ['other', 'billing'],
  ] as const)
    await op(`/v1/projects/${project}/databases`, { metadata: { name }, spec: parkedDatabase() });
  await op('/v1/projects/shop/backups', {
    metadata: { name: 'orders-backup' },
    spec: { database: 'orders' },
  });
  const login = await kumo([
    'login',
    '--url',
    t.url,
    '--token',
    t.token,
    '--name',
    'test',
    '--default-project',
    'shop',
  ]);
  expect(login.code).toBe(0);
  // A port nobody listens on, and a server that accepts connections and never answers.
  closedUrl = await new Promise<string>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(`http://127.0.0.1:${port}`));
    });
  });
  silent = createServer((socket) => held.push(socket));
  silentUrl = await new Promise<string>((resolve) =>
    silent.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(silent.address() as { port: number }).port}`),
    ),
  );
  // A second saved context, on the closed port.
  const file = join(home, 'config.json');
  const config = JSON.parse(await readFile(file, 'utf8'));
  config.contexts.down = { url: closedUrl, token: 'kumo_nothing' };
  await writeFile(file, JSON.stringify(config), { mode: 0o600 });
});
afterAll(async () => {
  for (const socket of held) socket.destroy();
  await new Promise((resolve) => (silent ? silent.close(resolve) : resolve(undefined)));
  await t?.stop();
  await rm(home, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: {
        PATH: `${bin}:${process.env.PATH!}`,
        HOME: home,
        KUMO_CONFIG: join(home, 'config.json'),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const kumo = (args: string[], env?: Record<string, string>) => run(process.execPath, [KUMO, ...args], env);

/** The candidates `kumo __complete -- WORDS` prints, as the completion scripts call it. */
async function candidates(words: string[], env?: Record<string, string>): Promise<string[]> {
  const res = await kumo(['__complete', '--', ...words], env);
  expect(res).toMatchObject({ code: 0, stderr: '' });
  return lines(res.stdout);
}

const lines = (text: string) => text.split('\n').filter(Boolean).sort();

const KIND_WORDS = [
  'backup',
  'backups',
  'database',
  'databases',
  'databaseuser',
  'databaseusers',
  'db',
  'db-user',
  'org',
  'orgs',
  'project',
  'projects',
  'target',
  'targets',
  'webhook',
  'webhooks',
];

describe('kumo __complete', () => {
  it('completes database names of the project from the API, by prefix', async () => {
    expect(await candidates(['db', 'get', ''])).toEqual(['ledger', 'orders', 'origins']);
    expect(await candidates(['db', 'get', 'or'])).toEqual(['orders', 'origins']);
    expect(await candidates(['db', 'credentials', 'l'])).toEqual(['ledger']);
    // The words as typed, without `--`, as well.
    expect(lines((await kumo(['__complete', 'db', 'get', 'or'])).stdout)).toEqual(['orders', 'origins']);
  });

  it('completes kinds, then the names of the kind typed', async () => {
    expect(await candidates(['get', ''])).toEqual(KIND_WORDS);
    expect(await candidates(['get', 'd'])).toEqual([
      'database',
      'databases',
      'databaseuser',
      'databaseusers',
      'db',
      'db-user',
    ]);
    expect(await candidates(['get', 'db', ''])).toEqual(['ledger', 'orders', 'origins']);
    expect(await candidates(['describe', 'databases', 'le'])).toEqual(['ledger']);
    expect(await candidates(['edit', 'org', ''])).toEqual(['acme']);
    expect(await candidates(['get', 'projects', ''])).toEqual(['other', 'shop']);
  });

  it('reads -p/--project and --context from the line', async () => {
    expect(await candidates(['db', 'get', '-p', 'other', ''])).toEqual(['billing']);
    expect(await candidates(['get', 'db', '--project=other', ''])).toEqual(['billing']);
    expect(await candidates(['-p', 'other', 'db', 'delete', ''])).toEqual(['billing']);
    expect(lines((await kumo(['__complete', 'db', 'get', '-p', 'other', ''])).stdout)).toEqual(['billing']);
    // KUMO_PROJECT is the default when the line names none.
    expect(await candidates(['db', 'get', ''], { KUMO_PROJECT: 'other' })).toEqual(['billing']);
    // The names of the context's Kumo: none from one that is down.
    expect(await candidates(['db', 'get', '--context', 'down', ''])).not.toContain('orders');
  });

  it('completes the values of options that name resources', async () => {
    expect(await candidates(['get', 'db', '-p', ''])).toEqual(['other', 'shop']);
    expect(await candidates(['backup', 'create', '--db', 'o'])).toEqual(['orders', 'origins']);
    expect(await candidates(['db', 'create', 'copy', '--engine', 'postgres', '--from-backup', ''])).toEqual([
      'orders-backup',
    ]);
    expect(await candidates(['backup', 'verify', ''])).toEqual(['orders-backup']);
    expect(await candidates(['project', 'create', 'x', '--org', ''])).toEqual(['acme']);
    expect(await candidates(['db', 'create', 'x', '--target', ''])).toEqual(['local', 'parked']);
    expect(await candidates(['--context', ''])).toEqual(['down', 'test']);
    expect(await candidates(['config', 'use-context', 't'])).toEqual(['test']);
    expect(await candidates(['target', 'create', 'x', '--driver', ''])).toEqual(['kubernetes', 'local']);
    // A new name is not completed.
    expect(await candidates(['db', 'create', 'or'])).toEqual([]);
  });

  it('completes subcommands and options from the command tree', async () => {
    expect(await candidates(['db', ''])).toEqual([
      'connect',
      'create',
      'credentials',
      'delete',
      'get',
      'label',
      'list',
      'logs',
      'restore',
      'start',
      'stop',
      'update',
    ]);
    expect(await candidates(['d'])).toEqual(['db', 'db-user', 'delete', 'describe', 'diff']);
    expect(await candidates(['db', 'get', '--'])).toEqual([
      '--context',
      '--help',
      '--output',
      '--project',
      '--timeout',
      '--wait',
    ]);
    expect(await candidates(['get', 'db', '--s'])).toEqual(['--selector']);
    expect(await candidates(['completion', ''])).toEqual(['bash', 'fish', 'zsh']);
    expect(await candidates([''])).not.toContain('__complete');
  });

  it('offers what the command tree knows, and no error, when the API cannot answer', async () => {
    for (const url of [closedUrl, silentUrl]) {
      const env = { KUMO_URL: url, KUMO_TOKEN: 'kumo_nothing' };
      expect(await candidates(['db', ''], env)).toContain('get');
      expect(await candidates(['get', ''], env)).toEqual(KIND_WORDS);
      const names = await candidates(['db', 'get', ''], env);
      expect(names).toContain('--help');
      expect(names).not.toContain('orders');
    }
    // Nor when not logged in at all.
    const nowhere = { KUMO_CONFIG: join(home, 'none.json') };
    expect(await candidates(['db', 'get', ''], nowhere)).toContain('--project');
  });
});

describe('kumo completion scripts', () => {
  it('bash completes names from the API', async () => {
    const script = (words: string, cword: number) =>
      `source <(kumo completion bash); COMP_WORDS=(${words}); COMP_CWORD=${cword}; _kumo; printf "%s\\n" "\${COMPREPLY[@]}"`;
    const names = await run('bash', ['-c', script('kumo db get ""', 3)]);
    expect(names).toMatchObject({ code: 0, stderr: '' });
    expect(lines(names.stdout)).toEqual(['ledger', 'orders', 'origins']);
    expect(lines((await run('bash', ['-c', script('kumo get db -p other b', 5)])).stdout)).toEqual([
      'billing',
    ]);
    expect(lines((await run('bash', ['-c', script('kumo db st', 2)])).stdout)).toEqual(['start', 'stop']);
    // Offline: what the command tree knows.
    const offline = await run('bash', ['-c', script('kumo db st', 2)], {
      KUMO_URL: closedUrl,
      KUMO_TOKEN: 'x',
    });
    expect(lines(offline.stdout)).toEqual(['start', 'stop']);
  });

  it.runIf(installed('zsh'))('zsh completes names from the API', async () => {
    // Its function, called as compinit would, with compadd and compdef standing in for the real ones.
    const res = await run('zsh', [
      '-fc',
      'compdef() { :; }; source <(kumo completion zsh); compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }; words=(kumo db get ""); CURRENT=4; _kumo',
    ]);
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(lines(res.stdout)).toEqual(['ledger', 'orders', 'origins']);
  });

  it.runIf(installed('fish'))('fish completes names from the API', async () => {
    const res = await run('fish', [
      '--no-config',
      '-c',
      'kumo completion fish | source; complete -C"kumo db get "',
    ]);
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(lines(res.stdout).map((l) => l.split('\t')[0])).toEqual(['ledger', 'orders', 'origins']);
  });
});

function installed(shell: string): boolean {
  return spawnSync(shell, ['-c', 'exit 0'], { stdio: 'ignore' }).status === 0;
}
