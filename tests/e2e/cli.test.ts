import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Command } from 'commander';
import { cliMarkdown, walk } from '../../packages/cli/src/commands/meta.js';
import { processRuntime } from '../../packages/cli/src/core/runtime.js';
import { buildProgram } from '../../packages/cli/src/program.js';
import { startTestKumo } from '../../packages/server/src/testing/test-kumo.js';

// The real `kumo` command, as a subprocess, against a real running Kumo.
const KUMO = join(import.meta.dirname, '../../packages/cli/bin/kumo.js');
let t: Awaited<ReturnType<typeof startTestKumo>>;
let home: string;

beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
  home = await mkdtemp(join(tmpdir(), 'kumo-cli-'));
});
afterAll(async () => {
  await t?.stop();
  await rm(home, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function kumo(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [KUMO, ...args], {
      env: { PATH: process.env.PATH!, HOME: home, KUMO_CONFIG: join(home, 'config.json'), ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(options.stdin ?? '');
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('kumo CLI', () => {
  it('logs in, saving a context only it can read, and lists contexts', async () => {
    const bad = await kumo(['login', '--url', t.url, '--token', 'kumo_wrong']);
    expect(bad.code).toBe(6);
    const res = await kumo([
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
    expect(res.code).toBe(0);
    expect((await stat(join(home, 'config.json'))).mode & 0o777).toBe(0o600);
    const list = await kumo(['context', 'list']);
    expect(list.stdout).toMatch(/\*\s+test\s+http:\/\/127\.0\.0\.1:\d+\s+shop/);
    expect((await kumo(['config', 'get-contexts'])).stdout).toBe(list.stdout);
    expect((await kumo(['config', 'current-context'])).stdout).toBe('test\n');
    // Client and server versions, by command and by flag.
    const version = await kumo(['version']);
    expect(version.stdout).toMatch(
      /^Client: \d+\.\d+\.\d+\nServer: \d+\.\d+\.\d+ at http:\/\/127\.0\.0\.1:\d+\n$/,
    );
    expect((await kumo(['--version'])).stdout).toBe(version.stdout);
    expect(JSON.parse((await kumo(['version', '-o', 'json'])).stdout)).toMatchObject({
      client: expect.any(String),
      server: { url: t.url, version: expect.any(String) },
    });
    // A second context to switch to and forget; logout forgets the current one.
    expect((await kumo(['login', '--url', t.url, '--token', t.token, '--name', 'other'])).code).toBe(0);
    expect((await kumo(['config', 'use-context', 'test'])).stdout).toBe('Using context "test".\n');
    expect((await kumo(['config', 'delete-context', 'other'])).code).toBe(0);
    expect((await kumo(['config', 'use-context', 'other'])).code).toBe(2);
    expect((await kumo(['login', '--url', t.url, '--token', t.token, '--name', 'gone'])).code).toBe(0);
    const out = await kumo(['logout']);
    expect(out.stdout).toBe('Context "gone" and its token removed from this machine.\n');
    expect((await kumo(['version'])).stdout).toMatch(/Server: not logged in/);
    expect((await kumo(['config', 'use-context', 'test'])).code).toBe(0);
    expect((await kumo(['org', 'create', 'acme', '--wait'])).stdout).toBe('org/acme created\n');
    expect((await kumo(['project', 'create', 'shop', '--org', 'acme', '--wait'])).code).toBe(0);
  });

  it('creates a database with --wait, shows its credentials and connects to it with psql', async () => {
    const created = await kumo([
      'db',
      'create',
      'orders',
      '--engine',
      'postgres',
      '--acl',
      '127.0.0.1/32=tests',
      '--wait',
    ]);
    expect(created.code).toBe(0);
    expect(created.stdout).toBe('db/orders created\n');
    expect(created.stderr).toContain('db/orders: Ready'); // progress, plain lines when not on a terminal
    // Across every project the token sees, with the project in its own column.
    const all = await kumo(['get', 'db', '-A', '--project', 'elsewhere']);
    expect(all.stdout).toMatch(/^NAME +PROJECT +PHASE/);
    expect(all.stdout).toMatch(/\norders +shop +Ready /);
    expect((await kumo(['db', 'list', '--all-projects', '-o', 'json'])).stdout).toContain('"name": "orders"');
    // One page with the spec, the conditions and their reasons, and what happened.
    const page = (await kumo(['describe', 'db', 'orders'])).stdout;
    expect(page).toMatch(/^Name: +orders\nKind: +Database\nProject: +shop\n/);
    expect(page).toMatch(/Spec:\n(.*\n)*? {2}engine: postgres\n/);
    expect(page).toMatch(
      /Conditions:\n {2}TYPE +STATUS +REASON +AGE +MESSAGE\n(.*\n)*? {2}Ready +True +Running /,
    );
    expect(page).toMatch(/Events \(the last \d+ of \d+\):\n(.*\n)*? {2}\d+s ago +Normal +Started /);
    expect(JSON.parse((await kumo(['describe', 'db', 'orders', '-o', 'json'])).stdout)).toMatchObject({
      resource: { metadata: { name: 'orders' } },
      events: expect.arrayContaining([expect.objectContaining({ reason: 'Started' })]),
    });
    const creds = JSON.parse((await kumo(['db', 'credentials', 'orders', '-o', 'json'])).stdout);
    expect(creds).toMatchObject({ username: 'orders', database: 'orders', host: '127.0.0.1' });
    const query = await kumo(['db', 'connect', 'orders', '--', '-tAc', 'select 40 + 2']);
    expect(query.code).toBe(0);
    expect(query.stdout.trim()).toBe('42');
    const list = await kumo(['db', 'list']);
    expect(list.stdout).toMatch(/orders\s+shop\s+Ready\s+postgres/);
    expect((await kumo(['events', 'db', 'orders'])).stdout).toContain('Started');
  });

  it('connects to a Redis with redis-cli, and fails clearly where its access list refuses you', async () => {
    const created = await kumo([
      'db',
      'create',
      'cache',
      '--engine',
      'redis',
      '--acl',
      '10.9.9.9/32',
      '--wait',
    ]);
    expect(created.code).toBe(0);
    // redis-cli itself prints an I/O error and exits 0 here; kumo checks first and says why.
    const refused = await kumo(['db', 'connect', 'cache', '--', 'PING']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^kumo: redis-cli could not talk to db\/cache: .+\. If your address is not in its access list, add it: kumo db update cache --add-acl ADDRESS\/32\.\n$/,
    );
    expect((await kumo(['db', 'update', 'cache', '--add-acl', '127.0.0.1/32', '--wait'])).code).toBe(0);
    const ping = await kumo(['db', 'connect', 'cache', '--', 'PING']);
    expect(ping).toMatchObject({ code: 0, stdout: 'PONG\n' });
    expect((await kumo(['db', 'delete', 'cache', '--yes', '--wait'])).code).toBe(0);
  });

  it('watches: what there is now, then a line per change as it happens', async () => {
    const child = spawn(process.execPath, [KUMO, 'get', 'db', 'orders', '-w', '-o', 'json'], {
      env: { PATH: process.env.PATH!, HOME: home, KUMO_CONFIG: join(home, 'config.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const events = () =>
      out
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { type: string; object: any });
    try {
      await expect.poll(() => events().map((e) => e.type), { timeout: 30_000 }).toEqual(['ADDED']);
      expect(events()[0]!.object.metadata.name).toBe('orders');
      const updated = await kumo(['db', 'update', 'orders', '--param', 'work_mem=2048']);
      expect(updated.code, updated.stderr).toBe(0);
      await expect
        .poll(
          () => events().some((e) => e.type === 'MODIFIED' && e.object.spec.parameters.work_mem === 2048),
          { timeout: 30_000 },
        )
        .toBe(true);
      expect(events().every((e) => e.object.metadata.name === 'orders')).toBe(true);
    } finally {
      child.kill('SIGINT');
    }
  });

  it('edits in $EDITOR with If-Match: applies, cancels, and reports a change made meanwhile', async () => {
    const editor = async (name: string, script: string) => {
      const path = join(home, name);
      await writeFile(path, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
      return path;
    };
    const label = await editor('label.sh', `sed -i 's/labels: {}/labels: { edited: "yes" }/' "$1"`);
    const edited = await kumo(['edit', 'db', 'orders'], { env: { EDITOR: label } });
    expect(edited.stdout, edited.stderr).toBe('db/orders edited\n');
    const db = JSON.parse((await kumo(['db', 'get', 'orders', '-o', 'json'])).stdout);
    expect(db.metadata.labels).toEqual({ edited: 'yes' });
    expect((await kumo(['edit', 'db', 'orders'], { env: { EDITOR: 'true' } })).stdout).toBe(
      'Edit cancelled: nothing changed.\n',
    );
    // Someone changes it while the editor is open: nothing is applied, and the edit is kept.
    const racing = await editor(
      'race.sh',
      `'${process.execPath}' '${KUMO}' db update orders --param work_mem=1024 >/dev/null && sed -i 's/edited: yes/edited: again/' "$1"`,
    );
    const conflict = await kumo(['edit', 'db', 'orders'], { env: { EDITOR: racing } });
    expect(conflict.code).toBe(4);
    expect(conflict.stderr).toMatch(/was changed by someone else while you edited it: nothing was applied/);
    const kept = /kept in (\S+\.yaml);/.exec(conflict.stderr)![1]!;
    expect(await readFile(kept, 'utf8')).toContain('edited: again');
    await rm(join(kept, '..'), { recursive: true, force: true });
    const after = JSON.parse((await kumo(['db', 'get', 'orders', '-o', 'json'])).stdout);
    expect(after.metadata.labels).toEqual({ edited: 'yes' });
    expect(after.spec.parameters.work_mem).toBe(1024);
  });

  it('updates with a dry run first, then for real, and stops and starts with --wait', async () => {
    const dry = await kumo(['db', 'update', 'orders', '--param', 'max_connections=60', '--dry-run']);
    expect(dry.stdout).toContain('would restart the server');
    const real = await kumo([
      'db',
      'update',
      'orders',
      '--param',
      'work_mem=8192',
      '--add-acl',
      '127.0.0.2/32',
      '--wait',
    ]);
    expect(real.code).toBe(0);
    const db = JSON.parse((await kumo(['db', 'get', 'orders', '-o', 'json'])).stdout);
    expect(db.spec.parameters).toEqual({ work_mem: 8192 });
    expect(db.spec.acl.map((a: { cidr: string }) => a.cidr)).toEqual(['127.0.0.1/32', '127.0.0.2/32']);
    // --acl means the same on update as on create: the whole list.
    const replaced = await kumo([
      'db',
      'update',
      'orders',
      '--acl',
      '127.0.0.1/32=tests',
      '--dry-run',
      '-o',
      'json',
    ]);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(JSON.parse(replaced.stdout).resource.spec.acl).toEqual([
      { cidr: '127.0.0.1/32', description: 'tests' },
    ]);
    expect(
      (await kumo(['db', 'update', 'orders', '--acl', '10.0.0.0/8', '--add-acl', '10.1.0.0/16'])).code,
    ).toBe(2);
    expect((await kumo(['db', 'stop', 'orders', '--wait'])).code).toBe(0);
    expect(JSON.parse((await kumo(['db', 'get', 'orders', '-o', 'json'])).stdout).status.phase).toBe(
      'Stopped',
    );
    expect((await kumo(['db', 'start', 'orders', '--wait'])).code).toBe(0);
  });

  it('applies, diffs and deletes a multi-resource YAML file, and round-trips get -o yaml through apply', async () => {
    const file = join(home, 'cafe.yaml');
    await writeFile(
      file,
      [
        'kind: Project',
        'metadata: { name: cafe }',
        'spec: { org: acme }',
        '---',
        'kind: Database',
        'metadata: { name: sessions, project: cafe, labels: { tier: cache } }',
        'spec: { engine: redis, version: "7", plan: small, acl: [{ cidr: 127.0.0.2/32 }] }',
        '',
      ].join('\n'),
    );
    const before = await kumo(['diff', '-f', file]);
    expect(before.code).toBe(1);
    expect(before.stdout).toContain('+  engine: redis');
    const applied = await kumo(['apply', '-f', file, '--wait']);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toBe('project/cafe created\ndb/sessions created\n');
    expect((await kumo(['diff', '-f', file])).code).toBe(0);
    expect((await kumo(['apply', '-f', file])).stdout).toBe(
      'project/cafe unchanged\ndb/sessions unchanged\n',
    );

    const yaml = (await kumo(['get', 'db', 'sessions', '-p', 'cafe', '-o', 'yaml'])).stdout;
    expect((await kumo(['apply', '-f', '-'], { stdin: yaml })).stdout).toBe('db/sessions unchanged\n');
    const changed = yaml.replace('plan: small', 'plan: medium');
    const diff = await kumo(['diff', '-f', '-'], { stdin: changed });
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(/-\s+plan: small\n\+\s+plan: medium/);

    const deleted = await kumo(['delete', '-f', file]);
    expect(deleted.stdout).toBe('db/sessions deleted\nproject/cafe deleted\n');
  });

  it('renders API problems readably with the documented exit codes', async () => {
    const conflict = await kumo(['db', 'create', 'orders', '--engine', 'postgres']);
    expect(conflict.code).toBe(4);
    expect(conflict.stderr).toContain('Already exists (409)');
    const stale = await kumo(['db', 'update', 'orders', '--plan', 'medium', '--if-match', '1']);
    expect(stale.code).toBe(4);
    expect(stale.stderr).toContain('Precondition failed (412)');
    const invalid = await kumo(['db', 'update', 'orders', '--param', 'work_mem=1']);
    expect(invalid.code).toBe(5);
    expect(invalid.stderr).toContain('spec.parameters.work_mem: must be at least 64 kB');
    const missing = await kumo(['db', 'get', 'nope']);
    expect(missing.code).toBe(3);
    const unreachable = await kumo(['db', 'list'], { env: { KUMO_URL: 'http://127.0.0.1:1' } });
    expect(unreachable.code).toBe(7);
    expect(unreachable.stderr).toContain('Cannot reach Kumo at http://127.0.0.1:1');
    const badToken = await kumo(['db', 'list'], { env: { KUMO_TOKEN: 'kumo_bad' } });
    expect(badToken.code).toBe(6);
    const timeout = await kumo(['db', 'create', 'slow', '--engine', 'postgres', '--wait', '--timeout', '0s']);
    expect(timeout.code).toBe(8);
    expect(timeout.stderr).toContain('Gave up waiting for db/slow');
    const usage = await kumo(['db', 'create']);
    expect(usage.code).toBe(2);
    const unconfirmed = await kumo(['db', 'delete', 'orders']);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('Pass --yes');
    for (const r of [conflict, stale, invalid, missing, unreachable, badToken, timeout, usage])
      expect(r.stderr).not.toMatch(/\n\s+at /);
    expect((await kumo(['db', 'delete', 'orders', '--yes', '--wait'])).code).toBe(0);
    expect((await kumo(['db', 'delete', 'slow', '--yes'])).code).toBe(0);
  });

  it('creates, lists and revokes API tokens, and shows the audit log', async () => {
    const created = await kumo(['token', 'create', 'ci', '--expires-in-days', '7']);
    expect(created.code).toBe(0);
    const secret = created.stdout.trim();
    expect(secret).toMatch(/^kumo_/);
    expect(created.stderr).toContain('not shown again');
    const asCi = { env: { KUMO_TOKEN: secret } };
    expect((await kumo(['get', 'orgs'], asCi)).code).toBe(0);
    const list = JSON.parse((await kumo(['token', 'list', '-o', 'json'])).stdout);
    const ci = list.find((x: { name: string }) => x.name === 'ci');
    expect(ci.revokedAt).toBeNull();
    expect((await kumo(['token', 'revoke', ci.id])).stdout).toBe(`token/${ci.id} revoked\n`);
    expect((await kumo(['get', 'orgs'], asCi)).code).toBe(6);

    const audit = await kumo(['audit', '--kind', 'Database', '--name', 'orders']);
    expect(audit.stdout).toMatch(/operator:admin\s+read-credentials\s+Database shop\/orders\s+success/);
    expect(audit.stdout).toMatch(/operator:admin\s+create\s+Database shop\/orders/);
    expect(audit.stdout).toMatch(/system:controllers\s+update-status\s+Database shop\/orders/);
    const people = await kumo(['audit', '--kind', 'Database', '--name', 'orders', '--no-system']);
    expect(people.stdout).toMatch(/operator:admin\s+create\s+Database shop\/orders/);
    expect(people.stdout).not.toContain('system:');
  });

  it('onboards a customer: user, membership, their token, roles enforced, quotas with their own exit code', async () => {
    expect((await kumo(['org', 'create', 'initech'])).code).toBe(0);
    expect((await kumo(['project', 'create', 'tps', '--org', 'initech'])).code).toBe(0);
    expect((await kumo(['user', 'create', 'peter', '--email', 'peter@initech.example'])).code).toBe(0);
    expect((await kumo(['member', 'set', 'peter', '--org', 'initech', '--role', 'developer'])).stdout).toBe(
      'peter is developer of org initech\n',
    );
    const handed = await kumo(['token', 'create', 'first', '--user', 'peter']);
    expect(handed.code).toBe(0);
    // Made by an operator, it is still peter's: it says so rather than "role owner".
    expect(handed.stderr).toMatch(/user:peter: what their memberships allow, at most role \w+\)/);
    const peter = { env: { KUMO_TOKEN: handed.stdout.trim() } };

    expect((await kumo(['whoami'], peter)).stdout).toMatch(/user:peter[\s\S]*initech\s+developer\s+all/);
    expect((await kumo(['get', 'orgs', '-o', 'json'], peter)).stdout).not.toContain('"acme"');
    const members = await kumo(['member', 'list', '--org', 'initech'], peter);
    expect(members.stdout).toMatch(/peter\s+developer\s+all/);
    const promote = await kumo(['member', 'set', 'peter', '--org', 'initech', '--role', 'admin'], peter);
    expect(promote.code).toBe(6);
    expect(promote.stderr).toContain('members.manage');
    expect((await kumo(['get', 'project', 'shop'], peter)).code).toBe(3);

    // People join by invitation: it waits until the invited user accepts it with their own token.
    expect((await kumo(['user', 'create', 'milton'])).code).toBe(0);
    const notAdmin = ['invitation', 'create', 'milton', '--org', 'initech', '--role', 'viewer'];
    expect((await kumo(notAdmin, peter)).code).toBe(6);
    const invited = await kumo([...notAdmin, '--projects', 'tps']);
    expect(invited.stdout).toMatch(
      /^invited milton to org initech as viewer in tps \(invitation [0-9a-f-]{36}/,
    );
    const milton = {
      env: { KUMO_TOKEN: (await kumo(['token', 'create', 'first', '--user', 'milton'])).stdout.trim() },
    };
    expect((await kumo(['get', 'project', 'tps'], milton)).code).toBe(3); // not yet a member
    const mine = await kumo(['invitation', 'list'], milton);
    const id = /^([0-9a-f-]{36})\s+initech\s+milton\s+viewer\s+tps\s+operator:admin/m.exec(mine.stdout)?.[1];
    expect(id, mine.stdout).toBeDefined();
    expect((await kumo(['invitation', 'accept', id!], milton)).stdout).toBe(
      'you are viewer of org initech in tps\n',
    );
    expect((await kumo(['get', 'project', 'tps'], milton)).code).toBe(0);
    expect((await kumo(['invitation', 'accept', id!], milton)).code).toBe(3);
    expect((await kumo(['invitation', 'list', '--org', 'initech'])).stdout).toBe('No pending invitations.\n');

    expect((await kumo(['quota', 'set', '--org', 'initech', '--databases', '0'], peter)).code).toBe(6);
    const set = await kumo(['quota', 'set', '--org', 'initech', '--databases', '0']);
    expect(set.stdout).toMatch(/databases\s+0\s+0\s+0/);
    const over = await kumo(
      ['db', 'create', 'x', '-p', 'tps', '--engine', 'redis', '--version', '7', '--plan', 'small'],
      peter,
    );
    expect(over.code).toBe(10);
    expect(over.stderr).toContain('quota: org initech databases: limit 0, used 0, 0 left');
    expect((await kumo(['quota', 'get', '-p', 'tps'], peter)).stdout).toMatch(/databases\s+none\s+0/);
    // The help's own example: "none" lifts a limit.
    const lifted = await kumo(['quota', 'set', '--org', 'initech', '--databases', 'none']);
    expect(lifted.code, lifted.stderr).toBe(0);
    expect(lifted.stdout).toMatch(/databases\s+none\s+0/);

    const audit = await kumo(['audit', '--org', 'initech', '--actor', 'operator:admin']);
    expect(audit.stdout).toMatch(/add-member\s+Member peter/);
  });

  it('keeps the price book, and shows usage to members and cost to those who may see money', async () => {
    const bad = await kumo(['price', 'set', 'database.runtime', '0.0.1', '--currency', 'EUR']);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toContain('unitPrice: "0.0.1" is not an amount of EUR');
    const set = await kumo(['price', 'set', 'database.runtime', '0.0137', '--currency', 'EUR']);
    expect(set.stdout).toMatch(/^price of database\.runtime: 0\.0137 EUR per hour from \S+Z\n$/);
    expect((await kumo(['price', 'set', 'database.storage', '0.1', '--currency', 'USD'])).code).toBe(5);
    expect((await kumo(['price', 'list'])).stdout).toMatch(/database\.runtime +\* +0\.0137 EUR +hour /);
    // Every database is metered from its creation: orders shows, with what its agent reported so far.
    const usage = JSON.parse((await kumo(['usage', '-o', 'json'])).stdout);
    const orders = usage.resources.find((r: { name: string }) => r.name === 'orders');
    expect(orders.coverage.expectedSeconds).toBeGreaterThan(0);
    expect(orders.coverage.observedSeconds + orders.coverage.missingSeconds).toBe(
      orders.coverage.expectedSeconds,
    );
    const cost = await kumo(['cost', '--org', 'acme']);
    expect(cost.stdout).toMatch(
      /^Org acme, \d{4}-\d{2} \(UTC\), as of .*\nTo date: +\d+\.\d{2} EUR\nForecast: +\d+\.\d{2} EUR/,
    );
    expect(cost.stdout).toMatch(/\ndb\/orders( \(deleted\))? +shop +\d+\.\d{2} /);
    // A developer sees usage, not money.
    expect((await kumo(['user', 'create', 'samir'])).code).toBe(0);
    expect((await kumo(['member', 'set', 'samir', '--org', 'acme', '--role', 'developer'])).code).toBe(0);
    const samir = {
      env: { KUMO_TOKEN: (await kumo(['token', 'create', 'samir', '--user', 'samir'])).stdout.trim() },
    };
    expect((await kumo(['usage', '-p', 'shop'], samir)).code).toBe(0);
    const denied = await kumo(['cost', '--org', 'acme'], samir);
    expect(denied.code).toBe(6);
    expect(denied.stderr).toContain('costs.read');
    // Invoices: none before a month has ended; this month cannot be closed yet.
    expect((await kumo(['invoice', 'list', '--org', 'acme'])).stdout).toBe('No resources found.\n');
    const month = new Date().toISOString().slice(0, 7);
    const early = await kumo(['invoice', 'close', '--org', 'acme', '--month', month]);
    expect(early.code).toBe(5);
    expect(early.stderr).toContain(`month: ${month} (UTC) is not over`);
    expect((await kumo(['invoice', 'list', '--org', 'acme'], samir)).code).toBe(6); // invoices.read
  });

  it('backs up, verifies, downloads, forks and restores in place, each with --wait', async () => {
    const schedule = [
      '--backup-schedule',
      '0 3 * * *',
      '--backup-timezone',
      'Europe/Berlin',
      '--backup-keep',
      '3',
      '--backup-verify',
    ];
    expect(
      (
        await kumo([
          'db',
          'create',
          'ledger',
          '--engine',
          'postgres',
          '--acl',
          '127.0.0.1/32',
          ...schedule,
          '--wait',
        ])
      ).code,
    ).toBe(0);
    const policy = JSON.parse((await kumo(['db', 'get', 'ledger', '-o', 'json'])).stdout).spec.backupPolicy;
    expect(policy).toEqual({ schedule: '0 3 * * *', timezone: 'Europe/Berlin', keepLast: 3, verify: true });
    await kumo([
      'db',
      'connect',
      'ledger',
      '--',
      '-c',
      'CREATE TABLE t AS SELECT generate_series(1, 100) AS n',
    ]);

    const made = await kumo(['backup', 'create', 'ledger-1', '--db', 'ledger', '--wait']);
    expect(made.code).toBe(0);
    expect(made.stdout).toBe('backup/ledger-1 created\n');
    expect((await kumo(['backup', 'list'])).stdout).toMatch(
      /ledger-1\s+shop\s+Succeeded\s+db ledger\s+[\d.]+ KiB/,
    );
    const verified = await kumo(['backup', 'verify', 'ledger-1', '--wait']);
    expect(verified.stdout).toMatch(/verification Passed: restored in \d+ ms/);
    const checked = await kumo(['backup', 'create', 'ledger-2', '--db', 'ledger', '--verify', '--wait']);
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/ledger-2 verification Passed: restored in \d+ ms; 1 table\(s\)/);

    const file = join(home, 'ledger-1.dump');
    const downloaded = await kumo(['backup', 'download', 'ledger-1', '-f', file]);
    expect(downloaded.code).toBe(0);
    expect(downloaded.stderr).toMatch(/written to .*ledger-1\.dump \(\d+ bytes, SHA-256 as recorded\)/);
    expect((await readFile(file)).subarray(0, 5).toString()).toBe('PGDMP');
    // A stored object changed behind Kumo's back: the download says so and leaves no file behind.
    const key = JSON.parse((await kumo(['backup', 'get', 'ledger-2', '-o', 'json'])).stdout).status.object
      .key;
    const stored = join(t.dataDir, 'backups', key);
    const bytes = await readFile(stored);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(stored, bytes);
    const bad = join(home, 'ledger-2.dump');
    const refused = await kumo(['backup', 'download', 'ledger-2', '-f', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /does not match the SHA-256 recorded when it was taken.*nothing was written/,
    );
    expect(await readdir(home)).not.toContain('ledger-2.dump');
    expect((await readdir(home)).filter((f) => f.endsWith('.part'))).toEqual([]);

    expect(
      (
        await kumo([
          'db',
          'create',
          'ledger-copy',
          '--engine',
          'postgres',
          '--from-backup',
          'ledger-1',
          '--acl',
          '127.0.0.1/32',
          '--wait',
        ])
      ).code,
    ).toBe(0);
    const copied = await kumo(['db', 'connect', 'ledger-copy', '--', '-tAc', 'select count(*) from t']);
    expect(copied.stdout.trim()).toBe('100');

    await kumo(['db', 'connect', 'ledger', '--', '-c', 'DELETE FROM t']);
    expect((await kumo(['db', 'restore', 'ledger', '--from-backup', 'ledger-1'])).code).toBe(2); // needs --yes
    const restored = await kumo(['db', 'restore', 'ledger', '--from-backup', 'ledger-1', '--yes', '--wait']);
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(
      /restored from ledger-1 in \d+ ms \(the data before is in backup ledger-safety-\d+\)/,
    );
    expect(
      (await kumo(['db', 'connect', 'ledger', '--', '-tAc', 'select count(*) from t'])).stdout.trim(),
    ).toBe('100');

    const failing = await kumo(['backup', 'create', '--db', 'no-such-db', '--wait']);
    expect(failing.code).toBe(5); // refused at admission: the database does not exist
    expect(failing.stderr).toContain('spec.database');
  }, 180_000); // several databases, backups and restores: room for a loaded machine

  it('works from the environment alone, for scripts and CI', async () => {
    const res = await kumo(['get', 'orgs', '-o', 'json'], {
      env: { KUMO_URL: t.url, KUMO_TOKEN: t.token, KUMO_CONFIG: join(home, 'none.json') },
    });
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout).map((o: { metadata: { name: string } }) => o.metadata.name)).toContain(
      'acme',
    );
  });

  it('has help with examples on commands, and bash and zsh completion', async () => {
    const help = await kumo(['db', 'create', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Examples:');
    // A mistake gets its error and a line naming the help to read, not the whole help.
    const unknown = await kumo(['dbx']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("error: unknown command 'dbx'\n(Did you mean db?)\n(see `kumo --help`)\n");
    const missing = await kumo(['db', 'create', 'x', '--bogus']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: .*\n\(see `kumo db create --help`\)\n$/);
    const bash = await kumo(['completion', 'bash']);
    expect(bash.stdout).toContain('complete -F _kumo kumo');
    expect(bash.stdout).toContain('kumo __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}"');
    expect((await kumo(['completion', 'zsh'])).stdout).toContain('compdef _kumo kumo');
    expect((await kumo(['completion', 'fish'])).stdout).toContain(
      "complete -c kumo -f -a '(__kumo_complete)'",
    );
    // The candidates come from `kumo __complete`; tests/e2e/cli-completion.test.ts drives it.
    expect((await kumo(['__complete', '--', 'db', ''])).stdout).toContain('credentials\n');
  });
});

describe('kumo CLI documentation and footprint', () => {
  it('shows examples in the help of every command', () => {
    const program = buildProgram(processRuntime());
    const without = walk(program)
      .filter(([, cmd]) => cmd.commands.length === 0)
      .filter(([, cmd]) => !cmd.helpInformation().includes('Example') && !helpText(cmd).includes('Example'))
      .map(([path]) => path.join(' '));
    expect(without).toEqual([]);
  });

  it('docs/cli.md is what the command definitions generate (run `npm run docs:cli`)', async () => {
    const file = join(import.meta.dirname, '../../docs/cli.md');
    const generated = await format(cliMarkdown(buildProgram(processRuntime())), {
      ...(await resolveConfig(file)),
      parser: 'markdown',
    });
    expect(await readFile(file, 'utf8')).toBe(generated);
  });

  it('is one self-contained bundle whose commands load the server only for up, server and agent', async () => {
    const pkg = JSON.parse(
      await readFile(join(import.meta.dirname, '../../packages/cli/package.json'), 'utf8'),
    );
    expect(pkg.dependencies).toBeUndefined(); // everything it runs is in dist/: installs offline
    expect(pkg.files).toEqual(['bin', 'dist']);
    // What `kumo db list` loads: the entry and the chunks it imports statically, not the server.
    const dist = join(import.meta.dirname, '../../packages/cli/dist');
    const loaded = new Set<string>();
    const visit = async (file: string): Promise<void> => {
      if (loaded.has(file)) return;
      loaded.add(file);
      const code = await readFile(join(dist, file), 'utf8');
      for (const [, chunk] of code.matchAll(/(?:from|import) "\.\/([\w-]+\.js)"/g)) await visit(chunk!);
    };
    await visit('kumo.js');
    const statically = await Promise.all([...loaded].map((f) => readFile(join(dist, f), 'utf8')));
    expect(statically.join('\n')).not.toContain('pg_advisory_lock'); // the store's migrations
    expect(statically.join('\n')).not.toContain('S3Client');
    const all = await readdir(dist);
    const server = await Promise.all(
      all.filter((f) => f.endsWith('.js')).map((f) => readFile(join(dist, f), 'utf8')),
    );
    expect(server.some((code) => code.includes('pg_advisory_lock'))).toBe(true); // it is in a lazy chunk
  });
});

function helpText(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}
