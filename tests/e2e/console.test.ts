import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  type DatabaseTestKumo,
  startKumoWithProject,
} from '../../packages/server/src/testing/database-helpers.js';
import { createTestDatabase } from '../../packages/server/src/testing/test-postgres.js';
import { parseUnitPrice } from '../../packages/server/src/metering/pricing.js';
import { UsageLedger } from '../../packages/server/src/metering/usage-ledger.js';
import type { UsageSample } from '../../packages/server/src/metering/usage-recorder.js';

// The web console in a real Chromium (Debian's), against a real Kumo with real databases.
const ROOT = join(import.meta.dirname, '../..');
const SHOTS = join(ROOT, 'artifacts', 'console');
let t: DatabaseTestKumo;
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  // Built as `npm start` builds it, for production: under vitest's NODE_ENV=test an in-process
  // build would bundle React's development build, with StrictMode's doubled effects.
  await promisify(execFile)('npm', ['run', 'build:console'], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
  });
  await mkdir(SHOTS, { recursive: true });
  // Usage reported every 2 s, so that the billing page has a cost to show soon after a price is set.
  t = await startKumoWithProject(inject('pg'), 'shop', { env: { KUMO_USAGE_REPORT_SECONDS: '2' } });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

/** A new browser page signed in as a new user with this role in acme, through the sign-in form. */
async function signedInMember(user: string, role: string): Promise<Page> {
  await t.request('/v1/users', { method: 'POST', json: { name: user } });
  await t.request(`/v1/orgs/acme/members/${user}`, { method: 'PUT', json: { role } });
  const made = (await (
    await t.request('/v1/tokens', { method: 'POST', json: { name: 'console', user } })
  ).json()) as any;
  const member = await browser.newPage();
  await member.goto(t.url);
  await member.getByLabel('API token').fill(made.token);
  await member.getByRole('button', { name: 'Sign in' }).click();
  return member;
}

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

// Generous: databases are really provisioned, and CI machines are shared.
describe('the web console', { timeout: 150_000 }, () => {
  it('signs in with a token kept in sessionStorage only, and shows the project', async () => {
    await page.goto(t.url);
    await shot('sign-in');
    await page.getByLabel('API token').fill('kumo_wrong_token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/unknown, expired or revoked/);
    await page.getByLabel('API token').fill(t.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('No databases in shop yet.').waitFor();
    expect(await page.getByLabel('Organisation').inputValue()).toBe('acme');
    expect(await page.getByLabel('Project').inputValue()).toBe('shop');
    const stored = await page.evaluate(() => {
      const w = globalThis as any; // runs in the page
      return { session: w.sessionStorage.length, local: w.localStorage.length };
    });
    expect(stored).toEqual({ session: 1, local: 0 });
    await shot('databases-empty');
  });

  it('creates a database through the form, shows API errors next to their field, and turns Ready live', async () => {
    await page.getByRole('link', { name: 'Create database' }).click();
    await page.getByLabel('Name').fill('web');
    await page.getByLabel('Storage (GB)').fill('99999');
    await page.getByLabel('Allow network (CIDR, optional)').fill('127.0.0.1/32');
    await page.getByRole('button', { name: 'Create' }).click();
    const storageError = page.locator('#db-storage-error');
    await storageError.waitFor();
    expect(await storageError.textContent()).toMatch(/at most|too big|plan/i);
    await shot('create-error');
    await page.getByLabel('Storage (GB)').fill('1');
    await page.getByLabel('Schedule (cron: minute hour day month weekday)').fill('0 25 * * *');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('#db-backup-schedule-error').waitFor();
    await page.getByLabel('Schedule (cron: minute hour day month weekday)').fill('0 3 1 1 *');
    await page.getByLabel('Time zone').fill('Europe/Berlin');
    await page.getByLabel(/Verify each backup/).check();
    await page.getByRole('button', { name: 'Create' }).click();
    await page.waitForURL(/#\/p\/shop\/databases\/web$/);
    // First the server side (provisioning may be slow on a loaded machine), then the page, which
    // must follow by itself: a failure here says which of the two did not get there.
    await expect
      .poll(
        async () => ((await (await t.request('/v1/projects/shop/databases/web')).json()) as any).status.phase,
        {
          timeout: 90_000,
        },
      )
      .toBe('Ready');
    await page.locator('h1 .phase', { hasText: 'Ready' }).waitFor({ timeout: 15_000 });
    const created = (await (await t.request('/v1/projects/shop/databases/web')).json()) as any;
    expect(created.spec.backupPolicy).toEqual({
      schedule: '0 3 1 1 *', // once a year: no scheduled backup shows up during the test
      timezone: 'Europe/Berlin',
      keepLast: 7,
      verify: true,
    });
    await shot('database-detail');
  }, 150_000);

  it('shows a database created elsewhere (the API, as the CLI would) appear and turn Ready without a reload', async () => {
    await page.getByRole('link', { name: 'Databases' }).click();
    await page.locator('tr[data-name="web"]').waitFor();
    await t.request('/v1/projects/shop/databases', {
      method: 'POST',
      json: { metadata: { name: 'from-cli' }, spec: { engine: 'redis', version: '7', plan: 'small' } },
    });
    const row = page.locator('tr[data-name="from-cli"]');
    await row.waitFor({ timeout: 30_000 });
    await row.locator('.phase', { hasText: 'Ready' }).waitFor({ timeout: 60_000 });
    await shot('databases-live');
  });

  it('adds an ACL entry and shows it applied; says before saving that a parameter change restarts', async () => {
    await page.getByRole('link', { name: 'web' }).click();
    await page.getByLabel('CIDR').fill('10.1.2.0/24');
    await page.getByLabel('Description').fill('office');
    await page.getByRole('button', { name: 'Add' }).click();
    await page.getByRole('list', { name: 'Access list' }).getByText('10.1.2.0/24').waitFor();
    await page.getByRole('heading', { name: /Access list applied/ }).waitFor({ timeout: 30_000 });
    const acl = ((await (await t.request('/v1/projects/shop/databases/web')).json()) as any).spec.acl;
    expect(acl.map((e: any) => e.cidr)).toEqual(['127.0.0.1/32', '10.1.2.0/24']);
    expect(await page.locator('tr[data-condition="AclApplied"] td').nth(1).textContent()).toBe('True');
    // The ACL reloaded the server while the page was open: its log says so, followed live.
    await page
      .getByLabel('Server log')
      .getByText(/received SIGHUP/)
      .waitFor({ timeout: 15_000 });

    await page.getByLabel('Parameter', { exact: true }).fill('max_connections');
    await page.getByLabel('Value (empty: default)').fill('150');
    await page.getByRole('button', { name: 'Check' }).click();
    await page.getByRole('status').getByText('Saving will restart the server.').waitFor();
    await page.getByLabel('Value (empty: default)').fill('9999999');
    await page.getByRole('button', { name: 'Check' }).click();
    await page.locator('#param-value-error').waitFor();
    await page.getByRole('button', { name: 'Show credentials' }).click();
    expect(await page.getByLabel('Connection URI').textContent()).toMatch(/^postgresql:\/\/web:/);
    await shot('database-acl');
  });

  it('deletes only after the name is typed, and works at a phone width', async () => {
    const button = page.getByRole('button', { name: 'Delete web' });
    expect(await button.isDisabled()).toBe(true);
    await page.getByLabel('Type "web" to delete it and all its data').fill('web');
    await button.click();
    await page.waitForURL(/#\/p\/shop\/databases$/);
    await expect
      .poll(async () => (await t.request('/v1/projects/shop/databases/web')).status, { timeout: 30_000 })
      .toBe(404);
    await page.locator('tr[data-name="web"]').waitFor({ state: 'detached', timeout: 30_000 });

    await page.setViewportSize({ width: 375, height: 800 });
    await shot('databases-phone');
    const overflow = await page.evaluate(() => {
      const w = globalThis as any; // runs in the page
      return w.document.documentElement.scrollWidth - w.innerWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('backs up, verifies and restores into a new database from the Backups page', async () => {
    await page.getByRole('link', { name: 'Backups' }).click();
    await page.getByText('No backups yet.').waitFor();
    await page.getByLabel('Database').selectOption('from-cli');
    await page.getByRole('button', { name: 'Back up now' }).click();
    const row = page.locator('tbody tr').first();
    await row.locator('.phase', { hasText: 'Succeeded' }).waitFor({ timeout: 60_000 });
    await row.getByRole('button', { name: 'Verify' }).click();
    await row.getByText('verification Passed').waitFor({ timeout: 60_000 });
    // Downloaded through the browser, checked against the SHA-256 recorded at backup time.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      row.getByRole('button', { name: 'Download' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^from-cli-\d+\.rdb$/); // from-cli is a Redis
    expect((await readFile(await download.path())).subarray(0, 5).toString()).toBe('REDIS');
    await page
      .getByRole('status')
      .getByText(/bytes, SHA-256 as recorded/)
      .waitFor();
    // Changed behind Kumo's back, it is refused, not saved.
    const name = (await row.locator('td').first().textContent())!;
    const key = ((await (await t.request(`/v1/projects/shop/backups/${name}`)).json()) as any).status.object
      .key;
    const stored = join(t.dataDir, 'backups', key);
    const original = await readFile(stored);
    await writeFile(
      stored,
      Buffer.concat([original.subarray(0, -1), Buffer.from([original.at(-1)! ^ 0xff])]),
    );
    let saved = false;
    page.once('download', () => (saved = true));
    await row.getByRole('button', { name: 'Download' }).click();
    await page
      .getByRole('alert')
      .getByText(/does not match the SHA-256 recorded.*not saved/)
      .waitFor();
    expect(saved).toBe(false);
    await writeFile(stored, original);
    page.once('dialog', (d) => void d.accept('from-backup'));
    await row.getByRole('button', { name: 'Restore into new' }).click();
    await shot('backups');
    await expect
      .poll(
        async () =>
          ((await (await t.request('/v1/projects/shop/databases/from-backup')).json()) as any).status?.phase,
        {
          timeout: 60_000,
        },
      )
      .toBe('Ready');
    const restored = ((await (await t.request('/v1/projects/shop/databases/from-backup')).json()) as any)
      .status.restore;
    expect(restored).toMatchObject({ mode: 'fork', state: 'Succeeded' });

    // In place only after the database's name is typed.
    page.once('dialog', (d) => void d.accept('wrong'));
    await row.getByRole('button', { name: 'Restore in place' }).click();
    await page.getByRole('alert').getByText('Not restored: "wrong" is not "from-cli".').waitFor();
    page.once('dialog', (d) => void d.accept('from-cli'));
    await row.getByRole('button', { name: 'Restore in place' }).click();
    await expect
      .poll(
        async () =>
          ((await (await t.request('/v1/projects/shop/databases/from-cli')).json()) as any).status?.restore,
        { timeout: 60_000 },
      )
      .toMatchObject({ mode: 'in-place', state: 'Succeeded' });
  }, 150_000);

  it('offers credentials only to roles that may read them', async () => {
    const viewer = await signedInMember('vera', 'viewer');
    let logRequests = 0;
    viewer.on('request', (r) => void (r.url().includes('/logs?') && logRequests++));
    await viewer.getByRole('link', { name: 'from-cli' }).click();
    await viewer.getByText('Your role cannot see credentials.').waitFor();
    expect(await viewer.getByRole('button', { name: 'Show credentials' }).count()).toBe(0);
    // Nor the server log: it says so, rather than asking again every few seconds.
    await viewer.getByText('Your role may not read the server log.').waitFor();
    expect(logRequests).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 3500)); // longer than the console's retry
    expect(logRequests).toBe(1);
    await viewer.close();
  });

  it('lets an owner see quotas, manage members and make and revoke tokens on the organisation page', async () => {
    const owner = await signedInMember('olga', 'owner');
    await owner.getByRole('link', { name: 'Organisation' }).click();
    await owner.getByRole('heading', { name: 'Organisation acme' }).waitFor();
    await owner.getByRole('table', { name: 'org acme' }).locator('tr[data-quota="databases"]').waitFor();
    // Owners set project quotas (within the org's); the org's own are the operators'.
    expect(await owner.getByLabel('org acme: databases limit').count()).toBe(0);
    await owner.getByLabel('project shop: databases limit').fill('5');
    await owner.getByRole('button', { name: 'Save project shop' }).click();
    await expect
      .poll(async () => {
        const report = (await (await t.request('/v1/projects/shop/quotas')).json()) as any;
        return report.items.find((q: any) => q.quota === 'databases').limit;
      })
      .toBe(5);

    // vera is a viewer (the test before); make her a developer in one project.
    const vera = owner.locator('tr[data-member="vera"]');
    expect(await vera.locator('td').nth(1).textContent()).toBe('viewer');
    await owner.getByLabel('User').fill('vera');
    await owner.getByLabel('Role', { exact: true }).selectOption('developer');
    await owner.getByLabel('Only in projects (comma-separated, optional)').fill('shop');
    await owner.getByRole('button', { name: 'Save member' }).click();
    await vera.locator('td', { hasText: 'developer' }).waitFor();
    expect(await vera.locator('td').nth(2).textContent()).toBe('shop');

    // Anyone else is invited, and joins only on accepting; a name nobody has is invited alike.
    await t.request('/v1/users', { method: 'POST', json: { name: 'ivan' } });
    for (const name of ['ivan', 'nobody']) {
      await owner.getByLabel('User').fill(name);
      await owner.getByLabel('Role', { exact: true }).selectOption('viewer');
      await owner.getByLabel('Only in projects (comma-separated, optional)').fill('');
      await owner.getByRole('button', { name: 'Invite', exact: true }).click();
      await owner.locator(`tr[data-invitation="${name}"]`).waitFor();
    }
    await owner
      .getByRole('status')
      .getByText('nobody is invited as viewer: they join when they accept.')
      .waitFor();
    expect(await owner.locator('tr[data-member="ivan"]').count()).toBe(0);
    await owner.getByRole('button', { name: 'Cancel invitation of nobody' }).click();
    await owner.locator('tr[data-invitation="nobody"]').waitFor({ state: 'detached' });

    // ivan, not yet a member of anything, accepts on the organisation page and sees its members.
    const handed = (await (
      await t.request('/v1/tokens', { method: 'POST', json: { name: 'console', user: 'ivan' } })
    ).json()) as any;
    const ivan = await browser.newPage();
    await ivan.goto(t.url);
    await ivan.getByLabel('API token').fill(handed.token);
    await ivan.getByRole('button', { name: 'Sign in' }).click();
    await ivan.getByText('You have no projects yet.', { exact: false }).waitFor();
    await ivan.goto(`${t.url}/#/o/acme`);
    await ivan.getByText(/You are invited to acme as viewer by user:olga/).waitFor();
    expect(await ivan.getByRole('table', { name: 'Members' }).count()).toBe(0);
    await ivan.getByRole('button', { name: 'Accept acme' }).click();
    await ivan.locator('tr[data-member="ivan"]').waitFor();
    expect(await ivan.locator('tr[data-member="olga"] td').nth(1).textContent()).toBe('owner');
    expect(await ivan.getByRole('button', { name: 'Accept acme' }).count()).toBe(0);
    await ivan.close();
    await owner.reload();
    await owner.locator('tr[data-member="ivan"]').waitFor();
    expect(await owner.locator('tr[data-invitation="ivan"]').count()).toBe(0);

    await owner.getByLabel('Token name').fill('deploy');
    await owner.getByLabel('Role (at most yours)').selectOption('developer');
    await owner.getByRole('button', { name: 'Create token' }).click();
    const secret = await owner.getByLabel('New token').textContent();
    expect(secret).toMatch(/^kumo_/);
    const res = await fetch(`${t.url}/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } });
    expect(((await res.json()) as any).role).toBe('developer'); // a real token, capped as asked
    await owner.screenshot({ path: join(SHOTS, 'organisation.png'), fullPage: true });
    owner.once('dialog', (d) => void d.accept());
    await owner.getByRole('button', { name: 'Revoke deploy' }).click();
    await owner.locator('tr[data-token="deploy"]').waitFor({ state: 'detached' });
    const revoked = await fetch(`${t.url}/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } });
    expect(revoked.status).toBe(401);

    owner.once('dialog', (d) => void d.accept());
    await owner.getByRole('button', { name: 'Remove vera' }).click();
    await vera.waitFor({ state: 'detached' });

    // The activity: what was just done, by whom, newest first; filtered on request.
    await owner.getByRole('button', { name: 'Show activity' }).click();
    const activity = owner.getByRole('table', { name: 'Activity' });
    const revoke = activity.locator('tr[data-action="revoke-token"]').first();
    await revoke.waitFor();
    expect(await revoke.locator('td').nth(1).textContent()).toContain('olga');
    await owner.getByLabel('Kind', { exact: true }).fill('Database');
    await owner.getByRole('button', { name: 'Show activity' }).click();
    await activity.locator('tr[data-action="revoke-token"]').first().waitFor({ state: 'detached' });
    const kinds = await activity
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-kind')));
    expect(kinds.length).toBeGreaterThan(0);
    expect(new Set(kinds)).toEqual(new Set(['Database']));
    // People's changes only, until Kumo's own status updates are asked for too.
    const who = () => activity.locator('tbody tr td:nth-child(2)').allTextContents();
    expect((await who()).filter((w) => w.startsWith('system:'))).toEqual([]);
    await owner.getByLabel("Kumo's own status updates too").check();
    await owner.getByRole('button', { name: 'Show activity' }).click();
    await activity.locator('tr[data-action="update-status"]').first().waitFor();
    await owner.screenshot({ path: join(SHOTS, 'activity.png'), fullPage: true });
    await owner.close();
  });

  it('shows the billing page to who may see cost: total, forecast, daily chart, invoices; the API’s 403 to a viewer', async () => {
    // A price from the current quarter-hour on: the databases still running cost from now.
    const priced = await t.request('/v1/billing/prices', {
      method: 'POST',
      json: { meter: 'database.runtime', currency: 'EUR', unitPrice: '36' }, // a cent a second
    });
    expect(priced.status).toBe(201);
    const cost = async () => (await (await t.request('/v1/orgs/acme/cost')).json()) as any;
    await expect.poll(async () => (await cost()).total, { timeout: 30_000 }).toBeGreaterThan(0);
    const before = await cost();

    await page.goto(`${t.url}/#/o/acme`);
    await page.getByRole('link', { name: 'Billing' }).click();
    await page.getByRole('heading', { name: 'Billing of acme' }).waitFor();
    // Money from integers in the minor unit, exactly: "12.34 EUR".
    const total = (await page.getByTestId('total').textContent())!;
    expect(total).toMatch(/^\d+\.\d\d EUR$/);
    expect(Number(total.replace(/\D/g, ''))).toBeGreaterThanOrEqual(before.total);
    await page.getByText(before.forecast.assumption, { exact: false }).waitFor();
    const chart = page.getByRole('img', { name: `Daily cost by project in ${before.period.month}` });
    await chart.locator('canvas').waitFor();
    const series = await chart.locator('.u-legend .u-series th').allTextContents();
    expect(series.slice(1)).toEqual(['shop']); // after the x axis: one series per project
    // The chart follows its container's width.
    const plotWidth = async () => (await chart.locator('.uplot').boundingBox())!.width;
    const wide = await plotWidth();
    await page.setViewportSize({ width: 700, height: 900 });
    await expect.poll(plotWidth).toBeLessThan(wide);
    expect(await plotWidth()).toBeLessThanOrEqual(await chart.evaluate((el) => el.clientWidth));
    await page.setViewportSize({ width: 1280, height: 900 });
    await expect.poll(plotWidth).toBe(wide);
    expect(await page.locator('tr[data-project="shop"] td').nth(1).textContent()).toMatch(/^\d+\.\d\d EUR$/);
    await page.getByText('No invoices yet', { exact: false }).waitFor();
    await page.getByText('No budget', { exact: false }).waitFor();
    await shot('billing');
    // A month before anything existed costs nothing.
    const previous = await page.getByLabel('Month').locator('option').nth(1).textContent();
    await page.getByLabel('Month').selectOption(previous!);
    await expect.poll(() => page.getByTestId('total').textContent()).toBe('0.00 EUR');

    const viewer = await signedInMember('wes', 'viewer');
    await viewer.getByRole('link', { name: 'Organisation' }).click();
    await viewer.getByRole('heading', { name: 'Organisation acme' }).waitFor();
    expect(await viewer.getByRole('link', { name: 'Billing' }).count()).toBe(0);
    await viewer.goto(`${t.url}/#/o/acme/billing`);
    await viewer
      .getByRole('alert')
      .getByText(/is viewer, which does not allow costs\.read/)
      .waitFor();
    await viewer.screenshot({ path: join(SHOTS, 'billing-refused.png'), fullPage: true });
    await viewer.close();
  });

  it('closes a month gone by into an invoice, downloaded as PDF and CSV from the billing page, with money shown exactly', async () => {
    // A month whose grace hour is over (the one before the month an hour ago; acme bills in UTC)
    // as Kumo would have left it. No API writes the past: prices take effect from now on, and only
    // an agent reports usage, for its databases as they run. So the fixture is the store's state:
    // a price that held then (for plan large, which no database of this test uses now), a database
    // that lived then for 1234 s (its metered_resources row is what a trigger writes when a
    // database is created and deleted), and its agent's final samples, written by the ledger the
    // agent report route writes with. Closing, numbering, rendering and downloading are Kumo's own.
    const hourAgo = new Date(Date.now() - 3_600_000);
    const start = Date.UTC(hourAgo.getUTCFullYear(), hourAgo.getUTCMonth() - 1, 1) / 1000;
    const month = new Date(start * 1000).toISOString().slice(0, 7);
    const created = start + 9 * 86_400 + 12 * 3600; // the 10th, 12:00, on a quarter-hour
    const lived = 1234; // seconds: at 36 EUR an hour, 12.34 EUR
    const store = new pg.Pool({ connectionString: t.databaseUrl });
    try {
      await store.query(
        `INSERT INTO prices (meter, plan, currency, unit_price, effective_from, created_by)
         VALUES ('database.runtime', 'large', 'EUR', $1, to_timestamp($2), 'test fixture')`,
        [String(parseUnitPrice('36', 'EUR')), start],
      );
      const uid = randomUUID();
      await store.query(
        `INSERT INTO metered_resources (uid, kind, org, project, name, target, created_at, deleted_at)
         VALUES ($1, 'Database', 'acme', 'shop', 'legacy', 'local', to_timestamp($2), to_timestamp($3))`,
        [uid, created, created + lived],
      );
      const meters: Array<Pick<UsageSample, 'meter' | 'dimensions'>> = [
        { meter: 'database.runtime', dimensions: { engine: 'postgres', plan: 'large' } },
        { meter: 'database.storage', dimensions: { engine: 'postgres' } }, // 1 GB, not priced
      ];
      const samples: UsageSample[] = meters.flatMap(({ meter, dimensions }) =>
        [0, 900].map((offset) => ({
          resourceUid: uid,
          kind: 'Database',
          project: 'shop',
          name: 'legacy',
          meter,
          dimensions,
          intervalStart: created + offset,
          seconds: Math.min(900, lived - offset),
          quantity: String(Math.min(900, lived - offset)),
          final: true,
        })),
      );
      expect((await new UsageLedger(store).ingest('local', samples)).accepted).toBe(4);
    } finally {
      await store.end();
    }
    const closed = await t.request('/v1/orgs/acme/invoices/close', { method: 'POST', json: { month } });
    expect(closed.status).toBe(200);
    const invoice = (await closed.json()) as any;
    expect(invoice.total).toBe(1234);

    await page.goto(`${t.url}/#/o/acme/billing`);
    await page.reload();
    const row = page.locator(`tr[data-invoice="${invoice.number}"]`);
    await row.waitFor();
    expect(await row.locator('td').nth(1).textContent()).toBe(month);
    expect(await row.locator('td').nth(3).textContent()).toBe('12.34 EUR');
    const [pdf] = await Promise.all([
      page.waitForEvent('download'),
      row.getByRole('button', { name: `PDF ${invoice.number}` }).click(),
    ]);
    expect(pdf.suggestedFilename()).toMatch(/\.pdf$/);
    const pdfBytes = await readFile((await pdf.path())!);
    expect(pdfBytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      row.getByRole('button', { name: `CSV ${invoice.number}` }).click(),
    ]);
    expect(csv.suggestedFilename()).toMatch(/\.csv$/);
    const csvLines = (await readFile((await csv.path())!, 'utf8')).trim().split(/\r\n/);
    expect(csvLines[0]).toMatch(/^number,kind,corrects,org,month,/);
    const legacy = csvLines.filter((l) => l.includes('legacy') && l.includes('database.runtime'));
    expect(legacy).toHaveLength(1);
    expect(legacy[0]).toContain(',12.34,EUR');
    await shot('billing-invoice');

    // That month on the page: the same exact total, the deleted database, the unpriced meter, and
    // no missing time (its agent reported every second of it).
    await page.getByLabel('Month').selectOption(month);
    await expect.poll(() => page.getByTestId('total').textContent()).toBe('12.34 EUR');
    const resource = page.locator('tr[data-resource="legacy"]');
    expect(await resource.locator('td').first().textContent()).toBe('shop/legacy (deleted)');
    expect(await resource.locator('td').nth(1).textContent()).toBe('12.34 EUR');
    expect(await resource.locator('td').nth(2).textContent()).toBe('—');
    expect(await page.getByRole('status', { name: 'Missing time' }).count()).toBe(0);
    await page.getByText(/Not priced .*database\.storage/).waitFor();
  });

  it('sets, changes and removes budgets through the form, and shows them as Kumo checked them; only to who may change them', async () => {
    const org = async () => (await (await t.request('/v1/orgs/acme')).json()) as any;
    await page.goto(`${t.url}/#/o/acme/billing`);
    await page.reload();
    await page.getByText('No budget for org acme.').waitFor();
    const amount = page.getByLabel('Budget amount (EUR)');
    const thresholds = page.getByLabel('Thresholds (% of the budget, ascending)');
    const save = page.getByRole('button', { name: 'Save budget' });
    // The API's answer at its field.
    await amount.fill('12.3456');
    await save.click();
    expect(await page.locator('#budget-amount-error').textContent()).toMatch(/decimal such as "500\.00"/);

    await amount.fill('100000.00');
    await thresholds.fill('25, 50');
    await save.click();
    await page.getByTestId('budget-amount').getByText('100000.00 EUR a month').waitFor();
    expect((await org()).spec.budget).toEqual({ amount: '100000.00', thresholds: [25, 50] });
    // What every control-plane replica does every 5 minutes, now; the page follows the org live.
    await t.kumo.budgetWatcher.run();
    const within = page.getByTestId('within-budget');
    await within
      .getByText(
        /^True \(UnderBudget\): 0 % of the budget this month \(\d+\.\d\d of 100000\.00 EUR\), forecast \d+ %; thresholds 25, 50$/,
      )
      .waitFor();
    expect((await page.getByTestId('budget-used').textContent())!.trim()).toBe('0 %');

    // Lowered below what was spent: over budget, every threshold crossed.
    await amount.fill('0.01');
    await thresholds.fill('50, 80, 100');
    await save.click();
    await page.getByTestId('budget-amount').getByText('0.01 EUR a month').waitFor();
    await t.kumo.budgetWatcher.run();
    await within
      .getByText(/^False \(OverBudget\): \d+ % of the budget this month \(\d+\.\d\d of 0\.01 EUR\)/)
      .waitFor();
    const checked = (await org()).status.budget;
    expect(checked).toMatchObject({ amount: '0.01', crossed: 100 });
    // The figures are the org's status as the page follows it: another check (the watcher is
    // nudged by the change too) may land between reading the status and reading the page.
    const shown = async () => {
      const now = (await org()).status.budget;
      const used = (await page.getByTestId('budget-used').textContent())!.trim();
      const forecast = await page.getByTestId('budget-forecast').textContent();
      return (
        used === `${now.percent} %, past the 100 % threshold` &&
        forecast === `${now.forecastPercent} % by the end of the month`
      );
    };
    await expect.poll(shown, { timeout: 30_000 }).toBe(true);
    await shot('billing-budget');

    // A member with the billing role sees the budget, and no form to change it.
    const accountant = await signedInMember('bea', 'billing');
    await accountant.goto(`${t.url}/#/o/acme/billing`);
    await accountant
      .getByTestId('within-budget')
      .getByText(/^False \(OverBudget\)/)
      .waitFor();
    expect(await accountant.getByRole('button', { name: 'Save budget' }).count()).toBe(0);
    await accountant.close();

    await page.getByRole('button', { name: 'Remove budget' }).click();
    await page.getByText('No budget for org acme.').waitFor();
    expect((await org()).spec.budget).toBeUndefined();
    await t.kumo.budgetWatcher.run();
    const after = await org();
    expect(after.status.budget).toBeUndefined();
    expect(after.status.conditions.map((c: any) => c.type)).not.toContain('WithinBudget');

    // A project's own billing: its cost, and its budget, shown on the org's project rows too.
    await page.locator('tr[data-project="shop"]').getByRole('link', { name: 'shop' }).click();
    await page.getByRole('heading', { name: 'Billing of project shop' }).waitFor();
    expect(await page.getByTestId('total').textContent()).toMatch(/^\d+\.\d\d EUR$/);
    expect(await page.getByRole('table', { name: 'Invoices' }).count()).toBe(0);
    await page.getByText('No budget for project shop.').waitFor();
    await amount.fill('100000.00');
    await save.click();
    await page.getByTestId('budget-amount').getByText('100000.00 EUR a month').waitFor();
    await t.kumo.budgetWatcher.run();
    await within.getByText(/^True \(UnderBudget\): 0 % of the budget this month/).waitFor();
    await page.getByRole('link', { name: 'Billing of acme' }).click();
    await page.locator('tr[data-project="shop"] td').nth(2).getByText('0 % of 100000.00 EUR').waitFor();
  });

  it('is reachable by keyboard and logged no errors in the browser console', async () => {
    await page.goto(`${t.url}/#/p/shop/databases`);
    await page.locator('tr[data-name="from-cli"]').waitFor();
    const reached: string[] = [];
    for (let i = 0; i < 16; i++) {
      await page.keyboard.press('Tab');
      reached.push(
        await page.evaluate(() => {
          const el = (globalThis as any).document.activeElement;
          return el?.getAttribute('aria-label') || el?.textContent?.trim();
        }),
      );
    }
    // Every control of the header, the navigation and the list is reached, in order.
    expect(reached).toEqual(
      expect.arrayContaining([
        'Kumo',
        'Organisation',
        'Project',
        'Sign out',
        'Databases',
        'Backups',
        'Create database',
        'from-cli',
      ]),
    );
    // 4xx answers the test provoked on purpose are logged by Chromium as failed loads; nothing else may be.
    expect(problems.filter((p) => !/status of 4\d\d/.test(p))).toEqual([]);
  });
});

describe('npm start', () => {
  it('builds and serves the console on a fresh checkout', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kumo-start-'));
    await rm(join(ROOT, 'packages/console/dist'), { recursive: true, force: true });
    const child = spawn(
      'npm',
      [
        'start',
        '--',
        '--data-dir',
        dir,
        '--port',
        '0',
        '--database-url',
        await createTestDatabase(inject('pg')),
      ],
      {
        cwd: ROOT,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await expect.poll(() => out, { timeout: 90_000, interval: 200 }).toContain('Press Ctrl-C');
      const url = /API: +(\S+)/.exec(out)![1]!;
      const html = await (await fetch(url)).text();
      expect(html).toContain('<div id="root"></div>');
      const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
      const js = await fetch(url + script);
      expect(js.status).toBe(200);
      expect(js.headers.get('content-type')).toContain('javascript');
      // The app routes in the fragment (#/p/…): any other path, API-looking or not, is a problem+json 404.
      for (const path of ['/some/app/route', '/healthz', '/v1/nothing']) {
        const res = await fetch(`${url}${path}`);
        expect(res.status, path).toBe(404);
        expect(res.headers.get('content-type'), path).toBe('application/problem+json');
      }
      // The next start builds nothing: the sources did not change since this build.
      const again = execFileSync('npm', ['run', '--silent', 'build:if-changed', '-w', '@kumo/console'], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      expect(again).toContain('console: up to date');
    } finally {
      process.kill(-child.pid!, 'SIGINT');
      await new Promise((r) => child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
