import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { queryFrom } from '../../packages/server/src/testing/pg-connect.js';
import { startTestKumo } from '../../packages/server/src/testing/test-kumo.js';

// The real terraform binary (1.11 on these machines) drives the provider the kumo command installs,
// against a real Kumo with real PostgreSQL servers. Offline: the provider comes from a filesystem
// mirror, nothing from a registry.
const KUMO = join(import.meta.dirname, '../../packages/cli/bin/kumo.js');
const TERRAFORM = process.env.KUMO_TEST_TERRAFORM ?? '/usr/local/bin/terraform';

let t: Awaited<ReturnType<typeof startTestKumo>>;
let home: string;
let env: Record<string, string>;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: string[],
  cwd: string,
  extra: Record<string, string> = {},
): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const terraform = (dir: string, ...args: string[]) => run(TERRAFORM, [...args, '-no-color'], dir);
const api = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
  const res = await t.request(path, init);
  return { status: res.status, body: (res.status === 204 ? undefined : await res.json()) as any };
};

/** A Terraform working directory holding main.tf. */
async function workspace(name: string, config: string): Promise<string> {
  const dir = join(home, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'main.tf'), config);
  return dir;
}

const header = `
terraform {
  required_providers {
    kumo = { source = "kumo.dev/kumo/kumo" }
  }
}
provider "kumo" {}
`;

function shop(
  database: { plan?: string; storage?: number; parameters?: string; engine?: string; version?: string } = {},
) {
  return `${header}
resource "kumo_org" "acme" {
  name         = "acme"
  display_name = "ACME Corp"
}

resource "kumo_project" "shop" {
  name = "shop"
  org  = kumo_org.acme.name
}

resource "kumo_database" "orders" {
  project    = kumo_project.shop.name
  name       = "orders"
  engine     = "${database.engine ?? 'postgres'}"
  version    = "${database.version ?? '15'}"
  plan       = "${database.plan ?? 'small'}"
  storage_gb = ${database.storage ?? 10}
  parameters = { ${database.parameters ?? 'work_mem = "8192"'} }
  acl = [{ cidr = "127.0.0.1/32", description = "this host" }]
  timeouts {
    create = "5m"
  }
}

data "kumo_database_connection" "orders" {
  project = kumo_database.orders.project
  name    = kumo_database.orders.name
}

data "kumo_engines" "all" {}

output "uri" {
  value     = data.kumo_database_connection.orders.uri
  sensitive = true
}
output "engines" {
  value = [for e in data.kumo_engines.all.engines : e.engine]
}
`;
}

beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
  home = await mkdtemp(join(tmpdir(), 'kumo-terraform-'));
  const plugins = join(home, 'plugins');
  await writeFile(
    join(home, 'terraform.rc'),
    `provider_installation {
  filesystem_mirror {
    path    = "${plugins}"
    include = ["kumo.dev/kumo/kumo"]
  }
  direct {
    exclude = ["kumo.dev/kumo/kumo"]
  }
}
`,
  );
  env = {
    PATH: process.env.PATH!,
    HOME: home,
    TF_CLI_CONFIG_FILE: join(home, 'terraform.rc'),
    TF_IN_AUTOMATION: '1',
    CHECKPOINT_DISABLE: '1',
    KUMO_URL: t.url,
    KUMO_TOKEN: t.token,
  };
  const installed = await run(process.execPath, [KUMO, 'terraform', 'install', '--dir', plugins], home);
  expect(installed.code, installed.stderr).toBe(0);
  expect(installed.stdout).toContain('installed kumo.dev/kumo/kumo');
});
afterAll(async () => {
  await t?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('the Terraform provider, with the real terraform', () => {
  let dir: string;

  it('initialises offline, plans, and applies an org, a project and a database that is Ready', async () => {
    dir = await workspace('shop', shop());
    const init = await terraform(dir, 'init', '-input=false');
    expect(init.code, init.stdout + init.stderr).toBe(0);
    expect(init.stdout).toContain('Installing kumo.dev/kumo/kumo');

    const plan = await terraform(dir, 'plan', '-input=false', '-detailed-exitcode');
    expect(plan.code, plan.stdout + plan.stderr).toBe(2);
    expect(plan.stdout).toContain('Plan: 3 to add, 0 to change, 0 to destroy.');

    const apply = await terraform(dir, 'apply', '-input=false', '-auto-approve');
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    const db = (await api('/v1/projects/shop/databases/orders')).body;
    expect(db.status.phase).toBe('Ready');
    expect(db.status.observedGeneration).toBe(db.metadata.generation);
    expect(db.spec).toMatchObject({ plan: 'small', storageGB: 10, parameters: { work_mem: 8192 } });
    expect((await api('/v1/orgs/acme')).body.spec.displayName).toBe('ACME Corp');

    // The connection data source's URI works (and is sensitive: not printed).
    const output = await terraform(dir, 'output', '-raw', 'uri');
    expect(output.code, output.stderr).toBe(0);
    const [row] = await queryFrom(output.stdout, '127.0.0.1', 'SELECT 1 AS one');
    expect(row?.one).toBe(1);
    expect(apply.stdout).toContain('uri = <sensitive>');
    expect(apply.stdout).toMatch(/engines = \[[^\]]*"postgres"/);
  });

  it('plans no changes right after an apply', async () => {
    const plan = await terraform(dir, 'plan', '-input=false', '-detailed-exitcode');
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toContain('No changes.');
  });

  it('updates in place, warning about a parameter that restarts the server', async () => {
    await writeFile(
      join(dir, 'main.tf'),
      shop({ storage: 12, parameters: 'work_mem = "8192", max_connections = "60"' }),
    );
    const plan = await terraform(dir, 'plan', '-input=false');
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toContain('~ update in-place');
    expect(plan.stdout).toContain('Plan: 0 to add, 1 to change, 0 to destroy.');
    expect(plan.stdout).toContain('Changing max_connections restarts database orders');

    const apply = await terraform(dir, 'apply', '-input=false', '-auto-approve');
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    const db = (await api('/v1/projects/shop/databases/orders')).body;
    expect(db.spec).toMatchObject({ storageGB: 12, parameters: { max_connections: 60, work_mem: 8192 } });
    expect(db.status.phase).toBe('Ready');
    expect(db.status.observedGeneration).toBe(db.metadata.generation);
    expect((await terraform(dir, 'plan', '-input=false', '-detailed-exitcode')).code).toBe(0);
  });

  it('shows a changed engine or version as a replacement', async () => {
    await writeFile(
      join(dir, 'main.tf'),
      shop({ storage: 12, parameters: 'work_mem = "8192", max_connections = "60"', version: '16' }),
    );
    const plan = await terraform(dir, 'plan', '-input=false');
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toContain('must be replaced');
    expect(plan.stdout).toMatch(/version +=.*# forces replacement/);
    expect(plan.stdout).toContain('Plan: 1 to add, 0 to change, 1 to destroy.');
    await writeFile(
      join(dir, 'main.tf'),
      shop({ storage: 12, parameters: 'work_mem = "8192", max_connections = "60"' }),
    );
  });

  it('finds drift on refresh: a change made outside Terraform is planned back', async () => {
    const patched = await api('/v1/projects/shop/databases/orders', {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ spec: { plan: 'medium' } }),
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const plan = await terraform(dir, 'plan', '-input=false', '-detailed-exitcode');
    expect(plan.code, plan.stdout + plan.stderr).toBe(2);
    expect(plan.stdout).toMatch(/~ plan += "medium" -> "small"/);
    const apply = await terraform(dir, 'apply', '-input=false', '-auto-approve');
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect((await api('/v1/projects/shop/databases/orders')).body.spec.plan).toBe('small');
  });

  it('imports an existing database by "<project>/<name>" and then plans no changes', async () => {
    expect((await terraform(dir, 'state', 'rm', 'kumo_database.orders')).code).toBe(0);
    const imported = await terraform(dir, 'import', '-input=false', 'kumo_database.orders', 'shop/orders');
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    expect(imported.stdout).toContain('Import successful!');
    // All it cannot know from Kumo is the configuration's timeouts: recorded without a call to Kumo.
    const plan = await terraform(dir, 'plan', '-input=false');
    expect(plan.stdout, plan.stderr).toContain('Plan: 0 to add, 1 to change, 0 to destroy.');
    expect(plan.stdout).toContain('+ timeouts {');
    expect(plan.stdout).not.toContain(' -> ');
    const generation = (await api('/v1/projects/shop/databases/orders')).body.metadata.generation;
    expect((await terraform(dir, 'apply', '-input=false', '-auto-approve')).code).toBe(0);
    expect((await api('/v1/projects/shop/databases/orders')).body.metadata.generation).toBe(generation);
    expect((await terraform(dir, 'plan', '-input=false', '-detailed-exitcode')).code).toBe(0);

    const missing = await terraform(dir, 'import', '-input=false', 'kumo_database.other', 'shop/nope');
    expect(missing.code).not.toBe(0);
  });

  it('manages a member and a service token of the org: role changed in place, token replaced, both removed on destroy', async () => {
    expect((await api('/v1/users', { method: 'POST', json: { name: 'samir' } })).status).toBe(201);
    const iam = (role: string, tokenRole: string) => `${header}
resource "kumo_member" "samir" {
  org  = "acme"
  user = "samir"
  role = "${role}"
}

resource "kumo_service_token" "ci" {
  org   = "acme"
  name  = "ci-deploy"
  role  = "${tokenRole}"
  projects = ["shop"]
}

output "token" {
  value     = kumo_service_token.ci.token
  sensitive = true
}
`;
    const iamDir = await workspace('iam', iam('developer', 'viewer'));
    expect((await terraform(iamDir, 'init', '-input=false')).code).toBe(0);
    const apply = await terraform(iamDir, 'apply', '-input=false', '-auto-approve');
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    const members = (await api('/v1/orgs/acme/members')).body.items;
    expect(members.find((m: any) => m.user === 'samir')).toMatchObject({ role: 'developer', projects: null });
    const secret = (await terraform(iamDir, 'output', '-raw', 'token')).stdout;
    const whoami = async (token: string) =>
      t.request('/v1/whoami', { headers: { authorization: `Bearer ${token}` } });
    const me = (await (await whoami(secret)).json()) as any;
    expect(me).toMatchObject({ kind: 'service', role: 'viewer', org: 'acme', projects: ['shop'] });
    expect((await terraform(iamDir, 'plan', '-input=false', '-detailed-exitcode')).code).toBe(0);

    await writeFile(join(iamDir, 'main.tf'), iam('admin', 'developer'));
    const plan = await terraform(iamDir, 'plan', '-input=false');
    expect(plan.stdout).toContain('Plan: 1 to add, 1 to change, 1 to destroy.');
    expect(plan.stdout).toMatch(/role += "viewer" -> "developer" # forces replacement/);
    expect((await terraform(iamDir, 'apply', '-input=false', '-auto-approve')).code).toBe(0);
    expect((await api('/v1/orgs/acme/members')).body.items.find((m: any) => m.user === 'samir').role).toBe(
      'admin',
    );
    expect((await whoami(secret)).status).toBe(401); // the replaced token is revoked
    const next = (await terraform(iamDir, 'output', '-raw', 'token')).stdout;
    expect((await whoami(next)).status).toBe(200);

    expect((await terraform(iamDir, 'state', 'rm', 'kumo_member.samir')).code).toBe(0);
    const imported = await terraform(iamDir, 'import', '-input=false', 'kumo_member.samir', 'acme/samir');
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    expect((await terraform(iamDir, 'plan', '-input=false', '-detailed-exitcode')).code).toBe(0);

    const destroy = await terraform(iamDir, 'destroy', '-input=false', '-auto-approve');
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    expect((await api('/v1/orgs/acme/members')).body.items.some((m: any) => m.user === 'samir')).toBe(false);
    expect((await whoami(next)).status).toBe(401);
  });

  it('says what Kumo refused, naming the field, when an apply cannot be done', async () => {
    const bad = await workspace(
      'bad',
      `${header}
resource "kumo_database" "big" {
  project = "shop"
  name    = "big"
  engine  = "postgres"
  version = "15"
  plan    = "gigantic"
}
`,
    );
    expect((await terraform(bad, 'init', '-input=false')).code).toBe(0);
    const apply = await terraform(bad, 'apply', '-input=false', '-auto-approve');
    expect(apply.code).toBe(1);
    expect(apply.stderr).toContain('spec.plan unknown plan; choose one of small');
    expect((await api('/v1/projects/shop/databases/big')).status).toBe(404);
  });

  it('destroys everything and waits until it is gone', async () => {
    const destroy = await terraform(dir, 'destroy', '-input=false', '-auto-approve');
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    expect(destroy.stdout).toContain('Destroy complete! Resources: 3 destroyed.');
    expect((await api('/v1/projects/shop/databases/orders')).status).toBe(404);
    expect((await api('/v1/projects/shop')).status).toBe(404);
    expect((await api('/v1/orgs/acme')).status).toBe(404);
  });
});
