import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type TestKumo, startTestKumo } from '../../../server/src/testing/test-kumo.js';
import { CliError, EXIT } from '../core/exit-codes.js';
import type { Runtime } from '../core/runtime.js';
import { buildProgram } from '../program.js';

// The `kumo` commands run in-process, as bin.ts runs them, against a real Kumo in-process too.
let t: TestKumo;
let home: string;

/** A stream that keeps, synchronously, the text written to it. */
class Captured extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * One `kumo` command line with a fresh program, its exit code mapped as bin.ts maps it. `stdout`
 * is the live capture while it runs (for watches): read `text` of it, or the settled result.
 */
function start(args: string[], options: { env?: Record<string, string> } = {}) {
  const stdout = new Captured();
  const stderr = new Captured();
  const runtime: Runtime = {
    env: { PATH: process.env.PATH, HOME: home, KUMO_CONFIG: join(home, 'config.json'), ...options.env },
    stdout,
    stderr,
    stdin: Readable.from([]),
  };
  const settled = (async (): Promise<Result> => {
    const saved = process.exitCode; // set by some commands (db connect): the run's own code
    process.exitCode = undefined;
    let code: number;
    try {
      await buildProgram(runtime).parseAsync(['node', 'kumo', ...args]);
      code = Number(process.exitCode ?? EXIT.ok);
    } catch (err) {
      if (err instanceof CommanderError) code = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      else if (err instanceof CliError) {
        stderr.write(`kumo: ${err.message}\n`);
        code = err.code;
      } else {
        stderr.write(`kumo: unexpected error: ${(err as Error)?.stack ?? String(err)}\nPlease report it.\n`);
        code = EXIT.failure;
      }
    } finally {
      process.exitCode = saved;
    }
    return { code, stdout: stdout.text, stderr: stderr.text };
  })();
  return { stdout, settled };
}

const run = (args: string[], options?: { env?: Record<string, string> }) => start(args, options).settled;

/** A request to the API as the admin; throws unless it succeeded. */
async function api(kumo: TestKumo, method: string, path: string, json?: unknown): Promise<any> {
  const res = await kumo.request(path, { method, ...(json === undefined ? {} : { json }) });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Org acme with projects shop and cafe, and a target without an agent, where databases stay Pending. */
async function tenants(kumo: TestKumo): Promise<void> {
  await api(kumo, 'POST', '/v1/targets', { metadata: { name: 'parked' }, spec: { driver: 'kubernetes' } });
  await api(kumo, 'POST', '/v1/orgs', { metadata: { name: 'acme' }, spec: {} });
  for (const project of ['shop', 'cafe'])
    await api(kumo, 'POST', '/v1/projects', { metadata: { name: project }, spec: { org: 'acme' } });
}

const parked = { engine: 'postgres', version: '15', plan: 'small', target: 'parked' };
const acl = async (project: string, name: string) =>
  (await api(t, 'GET', `/v1/projects/${project}/databases/${name}`)).spec.acl;

beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
  home = await mkdtemp(join(tmpdir(), 'kumo-commands-'));
  await tenants(t);
});
afterAll(async () => {
  await t?.stop();
  await rm(home, { recursive: true, force: true });
});

describe('contexts and versions', () => {
  it('logs in, then shows the client and the server version', async () => {
    const login = await run([
      'login',
      '--url',
      t.url,
      '--token',
      t.token,
      '--name',
      'main',
      '--default-project',
      'shop',
    ]);
    expect(login).toEqual({
      code: 0,
      stdout: `Logged in to ${t.url} as context "main" (saved in ${join(home, 'config.json')}).\n`,
      stderr: '',
    });
    const version = await run(['version']);
    expect(version.stdout).toMatch(
      /^Client: \d+\.\d+\.\d+\nServer: \d+\.\d+\.\d+ at http:\/\/127\.0\.0\.1:\d+\n$/,
    );
    expect(JSON.parse((await run(['version', '-o', 'json'])).stdout)).toEqual({
      client: expect.stringMatching(/^\d+\.\d+\.\d+$/),
      server: { url: t.url, version: expect.any(String) },
    });
  });

  it('lists, switches between and deletes contexts, and refuses one it does not know', async () => {
    expect((await run(['login', '--url', t.url, '--token', t.token, '--name', 'other'])).code).toBe(0);
    const listed = (await run(['config', 'get-contexts'])).stdout.split('\n');
    expect(listed[0]).toMatch(/^CURRENT +NAME +URL +PROJECT$/);
    expect(listed).toContainEqual(expect.stringMatching(/^ +main +http:\/\/\S+ +shop$/));
    expect(listed).toContainEqual(expect.stringMatching(/^\* +other +http:\/\/\S+$/));
    expect((await run(['config', 'current-context'])).stdout).toBe('other\n');

    expect((await run(['config', 'use-context', 'main'])).stdout).toBe('Using context "main".\n');
    expect((await run(['config', 'current-context'])).stdout).toBe('main\n');
    expect(await run(['config', 'use-context', 'nope'])).toEqual({
      code: EXIT.usage,
      stdout: '',
      stderr: 'kumo: No context "nope". See `kumo config get-contexts`.\n',
    });
    expect((await run(['config', 'current-context'])).stdout).toBe('main\n'); // unchanged

    expect((await run(['config', 'delete-context', 'other'])).stdout).toBe(
      'Context "other" and its token removed from this machine; still using "main".\n',
    );
    expect((await run(['config', 'get-contexts'])).stdout).not.toContain('other');
    expect((await run(['config', 'use-context', 'other'])).code).toBe(EXIT.usage);
  });

  it('logs out: the current context and its token leave this machine, and commands say to log in', async () => {
    const { token } = await api(t, 'POST', '/v1/tokens', { name: 'laptop' });
    expect((await run(['login', '--url', t.url, '--token', token, '--name', 'laptop'])).code).toBe(0);
    expect(await readFile(join(home, 'config.json'), 'utf8')).toContain(token);

    expect((await run(['logout'])).stdout).toBe(
      'Context "laptop" and its token removed from this machine.\n',
    );
    expect(await readFile(join(home, 'config.json'), 'utf8')).not.toContain(token);
    const after = await run(['get', 'db']);
    expect(after.code).toBe(EXIT.auth);
    expect(after.stderr).toBe(
      'kumo: Not logged in. Run `kumo login --url URL --token TOKEN`, or set KUMO_URL and KUMO_TOKEN.\n',
    );
    expect((await run(['version'])).stdout).toMatch(/\nServer: not logged in \(kumo login\)\n$/);
    expect((await run(['config', 'use-context', 'main'])).code).toBe(0);
  });
});

describe('reading databases', () => {
  beforeAll(async () => {
    // A real, Ready server for the conditions and events; a parked one in a second project.
    const created = await run([
      'db',
      'create',
      'orders',
      '--engine',
      'postgres',
      '--acl',
      '127.0.0.1/32',
      '--wait',
    ]);
    expect(created.code, created.stderr).toBe(0);
    await api(t, 'POST', '/v1/projects/cafe/databases', { metadata: { name: 'menu' }, spec: parked });
  });

  it('lists the databases of every project with -A, with the project in its own column', async () => {
    const all = await run(['get', 'db', '-A']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^NAME +PROJECT +PHASE +DETAIL +AGE\n/);
    expect(all.stdout).toMatch(/\norders +shop +Ready /);
    expect(all.stdout).toMatch(/\nmenu +cafe +Pending /);
    const names = JSON.parse((await run(['get', 'db', '-A', '-o', 'json'])).stdout).map(
      (d: any) => `${d.metadata.project}/${d.metadata.name}`,
    );
    expect(names.sort()).toEqual(['cafe/menu', 'shop/orders']);
  });

  it('describes a database: spec, conditions with their reasons, events', async () => {
    const page = await run(['describe', 'db', 'orders']);
    expect(page.code, page.stderr).toBe(0);
    expect(page.stdout).toMatch(/^Name: +orders\nKind: +Database\nProject: +shop\n/);
    expect(page.stdout).toMatch(/\nPhase: +Ready\n/);
    expect(page.stdout).toMatch(/\nSpec:\n(.*\n)*? {2}engine: postgres\n/);
    expect(page.stdout).toMatch(
      /\nConditions:\n {2}TYPE +STATUS +REASON +AGE +MESSAGE\n(.*\n)*? {2}Ready +True +Running /,
    );
    expect(page.stdout).toMatch(/\nEvents \(the last \d+ of \d+\):\n(.*\n)*? {2}\d+s ago +Normal +Started /);
  });

  it('says what is missing, with exit code 3, when the name is unknown', async () => {
    const missing = await run(['describe', 'db', 'nope']);
    expect(missing.code).toBe(EXIT.notFound);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/^kumo: Not found \(404\): .*nope/);
  });
});

describe('edit', () => {
  /** An executable editor script in the temp dir; $1 is the file to edit. */
  const editor = async (name: string, script: string) => {
    const path = join(home, name);
    await writeFile(path, `#!/bin/sh\nset -e\n${script}\n`, { mode: 0o755 });
    return { KUMO_EDITOR: path };
  };
  const labels = async () => (await api(t, 'GET', '/v1/projects/shop/databases/orders')).metadata.labels;

  it('applies what was changed in the editor', async () => {
    const env = await editor('label.sh', `sed -i 's/labels: {}/labels: { edited: "yes" }/' "$1"`);
    expect(await run(['edit', 'db', 'orders'], { env })).toEqual({
      code: 0,
      stdout: 'db/orders edited\n',
      stderr: '',
    });
    expect(await labels()).toEqual({ edited: 'yes' });
  });

  it('cancels when the file is saved unchanged', async () => {
    expect((await run(['edit', 'db', 'orders'], { env: { KUMO_EDITOR: 'true' } })).stdout).toBe(
      'Edit cancelled: nothing changed.\n',
    );
    expect(await labels()).toEqual({ edited: 'yes' });
  });

  it('applies nothing when someone changed the database meanwhile, and keeps the edit in a file', async () => {
    // The editor is the "someone": it changes the database through the API before saving its edit.
    const env = await editor(
      'race.sh',
      [
        `curl -sf -o /dev/null -X PATCH -H 'authorization: Bearer ${t.token}' \\`,
        `  -H 'content-type: application/merge-patch+json' -d '{"metadata":{"labels":{"by":"someone"}}}' \\`,
        `  '${t.url}/v1/projects/shop/databases/orders'`,
        `sed -i 's/edited: yes/edited: again/' "$1"`,
      ].join('\n'),
    );
    const conflict = await run(['edit', 'db', 'orders'], { env });
    expect(conflict.code).toBe(EXIT.conflict);
    expect(conflict.stderr).toMatch(
      /^kumo: db\/orders was changed by someone else while you edited it: nothing was applied\. Your edit is kept in \S+\.yaml;/,
    );
    const kept = /kept in (\S+\.yaml);/.exec(conflict.stderr)![1]!;
    try {
      expect(await readFile(kept, 'utf8')).toContain('edited: again');
    } finally {
      await rm(join(kept, '..'), { recursive: true, force: true });
    }
    expect(await labels()).toEqual({ edited: 'yes', by: 'someone' });
  });
});

describe('quotas and access lists', () => {
  it('lifts an org quota with "none"', async () => {
    const lifted = await run(['quota', 'set', '--org', 'acme', '--backups', 'none']);
    expect(lifted.code, lifted.stderr).toBe(0);
    expect(lifted.stdout).toMatch(/^QUOTA +LIMIT +USED +REMAINING\n/);
    expect(lifted.stdout).toMatch(/\nbackups +none +\d+ +-\n/);
    const report = await api(t, 'GET', '/v1/orgs/acme/quotas');
    expect(report.items.find((i: any) => i.quota === 'backups')).toMatchObject({ limit: null });
  });

  it('creates a database with --acl and --add-acl, both making up its access list', async () => {
    const created = await run([
      'db',
      'create',
      'fenced',
      '-p',
      'cafe',
      '--engine',
      'postgres',
      '--target',
      'parked',
      '--acl',
      '10.0.0.0/8=office',
      '--add-acl',
      '192.0.2.1/32',
    ]);
    expect(created).toEqual({ code: 0, stdout: 'db/fenced created\n', stderr: '' });
    expect(await acl('cafe', 'fenced')).toEqual([
      { cidr: '10.0.0.0/8', description: 'office' },
      { cidr: '192.0.2.1/32' },
    ]);
  });

  it('updates the access list: adds and removes entries, or replaces it whole with --acl', async () => {
    const edit = ['db', 'update', 'fenced', '-p', 'cafe'];
    const changed = await run([...edit, '--add-acl', '198.51.100.0/24=vpn', '--remove-acl', '10.0.0.0/8']);
    expect(changed).toEqual({ code: 0, stdout: 'db/fenced updated\n', stderr: '' });
    expect(await acl('cafe', 'fenced')).toEqual([
      { cidr: '192.0.2.1/32' },
      { cidr: '198.51.100.0/24', description: 'vpn' },
    ]);
    expect((await run([...edit, '--acl', '127.0.0.1/32=tests'])).code).toBe(0);
    expect(await acl('cafe', 'fenced')).toEqual([{ cidr: '127.0.0.1/32', description: 'tests' }]);

    const both = await run([...edit, '--acl', '10.0.0.0/8', '--add-acl', '10.1.0.0/16']);
    expect(both).toEqual({
      code: EXIT.usage,
      stdout: '',
      stderr: 'kumo: --acl sets the whole list: use it alone, or --add-acl/--remove-acl.\n',
    });
    expect(await acl('cafe', 'fenced')).toEqual([{ cidr: '127.0.0.1/32', description: 'tests' }]);
  });

  it('refuses an unknown option with the error and a line naming the help, exit 2', async () => {
    const refused = await run(['db', 'create', 'x', '--engine', 'postgres', '--bogus']);
    expect(refused.code).toBe(EXIT.usage);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe("error: unknown option '--bogus'\n(see `kumo db create --help`)\n");
  });
});

describe('get -w', () => {
  // A Kumo of its own: a watch runs until interrupted, and stopping its server is how it ends in-process.
  let w: TestKumo;
  let watch: ReturnType<typeof start> | undefined;
  let stopped: Promise<void> | undefined;
  const events = () =>
    (watch?.stdout.text ?? '')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { type: string; object: any });
  beforeAll(async () => {
    w = await startTestKumo(inject('pg'));
    await tenants(w);
    const env = { KUMO_URL: w.url, KUMO_TOKEN: w.token, KUMO_PROJECT: 'shop' };
    watch = start(['get', 'db', '-w', '-o', 'json'], { env });
  });
  afterAll(async () => {
    await (stopped ?? w?.stop());
    await watch?.settled;
  });

  it('prints a line per change as it happens', async () => {
    await api(w, 'POST', '/v1/projects/shop/databases', { metadata: { name: 'watched' }, spec: parked });
    await expect
      .poll(() => events().map((e) => `${e.type} ${e.object.metadata.name}`), { timeout: 30_000 })
      .toContain('ADDED watched');
    await api(w, 'PATCH', '/v1/projects/shop/databases/watched', { metadata: { labels: { seen: 'yes' } } });
    await expect
      .poll(() => events().some((e) => e.type === 'MODIFIED' && e.object.metadata.labels.seen === 'yes'), {
        timeout: 30_000,
      })
      .toBe(true);
  });

  // The stream the stopping server cuts ends the watch's request; resuming it finds no server.
  it('ends saying Kumo cannot be reached when its server stops', async () => {
    await (stopped = w.stop());
    const ended = await watch!.settled;
    expect(ended.stderr).toMatch(/^kumo: Cannot reach Kumo at http:\/\/127\.0\.0\.1:\d+ /);
    expect(ended.code).toBe(EXIT.unreachable);
  });
});
