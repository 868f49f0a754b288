import type { MemberInfo, QuotaReport } from '@kumo/api';
import { type Command, InvalidArgumentError } from 'commander';
import { table, writeOutput } from '../core/output.js';
import { type Runtime, invocation } from '../core/runtime.js';
import { list, registerInvitationCommands } from './invitation.js';

interface User {
  name: string;
  displayName: string | null;
  email: string | null;
  createdAt: string;
}

const path = encodeURIComponent;

/** Who the caller is, users (operators), org members, invitations (invitation.ts) and quotas. */
export function registerIamCommands(program: Command, runtime: Runtime): void {
  program
    .command('whoami')
    .description('Who your token acts for, and what it may do in each org.')
    .addHelpText('after', '\nExample:\n  kumo whoami')
    .action(async (_o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const me = await inv.client.request<{
        principal: string;
        role: string;
        org: string | null;
        grants: Array<{ org: string; role: string; projects: string[] | null }>;
      }>('GET', '/v1/whoami');
      writeOutput(runtime.stdout, inv.format, me, () => {
        const head = `${me.principal} (token role ${me.role}${me.org ? `, limited to org ${me.org}` : ''})\n`;
        if (me.grants.length === 0) return head;
        return (
          head +
          table(
            ['ORG', 'ROLE', 'PROJECTS'],
            me.grants.map((g) => [g.org, g.role, g.projects?.join(',') ?? 'all']),
          )
        );
      });
    });

  const user = program
    .command('user')
    .description('Users: the people who can be members of orgs (operators).');
  user
    .command('create')
    .description(
      'Create a user. Then add them to an org (kumo member set, or an org invites them: kumo invitation create) and give them a token (kumo token create --user).',
    )
    .argument('<name>')
    .option('--email <email>')
    .option('--display-name <name>')
    .addHelpText('after', '\nExample:\n  kumo user create alice --email alice@example.com')
    .action(async (name: string, o: { email?: string; displayName?: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const made = await inv.client.request<User>('POST', '/v1/users', { body: { name, ...o } });
      writeOutput(runtime.stdout, inv.format, made, () => `user/${made.name} created\n`);
    });
  user
    .command('list')
    .description('List users.')
    .addHelpText('after', '\nExample:\n  kumo user list')
    .action(async (_o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const { items } = await inv.client.request<{ items: User[] }>('GET', '/v1/users');
      writeOutput(runtime.stdout, inv.format, items, () =>
        table(
          ['NAME', 'EMAIL', 'CREATED'],
          items.map((u) => [u.name, u.email ?? '-', u.createdAt]),
        ),
      );
    });
  user
    .command('delete')
    .description('Remove a user: their memberships go and their tokens stop working at once.')
    .argument('<name>')
    .addHelpText('after', '\nExample:\n  kumo user delete alice')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      await inv.client.request('DELETE', `/v1/users/${path(name)}`);
      runtime.stdout.write(`user/${name} deleted\n`);
    });

  const member = program
    .command('member')
    .description("An org's members and their roles: owner, admin, developer, viewer, billing.");
  member
    .command('list')
    .description("List an org's members (its pending invitations: kumo invitation list --org).")
    .requiredOption('--org <org>')
    .addHelpText('after', '\nExample:\n  kumo member list --org acme')
    .action(async (o: { org: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const { items } = await inv.client.request<{ items: MemberInfo[] }>(
        'GET',
        `/v1/orgs/${path(o.org)}/members`,
      );
      writeOutput(runtime.stdout, inv.format, items, () =>
        table(
          ['USER', 'ROLE', 'PROJECTS', 'SINCE'],
          items.map((m) => [m.user, m.role, m.projects?.join(',') ?? 'all', m.updatedAt]),
        ),
      );
    });
  member
    .command('set')
    .alias('add')
    .description(
      "Change a member's role, optionally only for some projects; operators also add members (everyone else invites them: kumo invitation create). Only owners make or change owners; an org keeps at least one owner.",
    )
    .argument('<user>')
    .requiredOption('--org <org>')
    .requiredOption('--role <role>', 'owner, admin, developer, viewer or billing')
    .option('--projects <names>', 'only in these projects (comma-separated); default: the whole org', list)
    .addHelpText(
      'after',
      '\nExamples:\n  kumo member set bob --org acme --role developer\n  kumo member set carol --org acme --role viewer --projects shop,blog',
    )
    .action(async (name: string, o: { org: string; role: string; projects?: string[] }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const m = await inv.client.request<MemberInfo>('PUT', `/v1/orgs/${path(o.org)}/members/${path(name)}`, {
        body: { role: o.role, ...(o.projects ? { projects: o.projects } : {}) },
      });
      writeOutput(
        runtime.stdout,
        inv.format,
        m,
        () => `${m.user} is ${m.role} of org ${m.org}${m.projects ? ` in ${m.projects.join(', ')}` : ''}\n`,
      );
    });
  member
    .command('remove')
    .description('Remove a member from an org (owners only for owners; never the last owner).')
    .argument('<user>')
    .requiredOption('--org <org>')
    .addHelpText('after', '\nExample:\n  kumo member remove bob --org acme')
    .action(async (name: string, o: { org: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      await inv.client.request('DELETE', `/v1/orgs/${path(o.org)}/members/${path(name)}`);
      runtime.stdout.write(`${name} removed from org ${o.org}\n`);
    });

  const quota = program
    .command('quota')
    .description('Quotas of an org or project, and how much of each is used.');
  const scopeOf = (o: { org?: string }, cmd: Command) => {
    const project = cmd.optsWithGlobals<{ project?: string }>().project;
    if (o.org) return `/v1/orgs/${path(o.org)}/quotas`;
    if (project) return `/v1/projects/${path(project)}/quotas`;
    throw new InvalidArgumentError('Say whose quotas: --org ORG or -p PROJECT.');
  };
  quota
    .command('get')
    .description('Show the quotas of an org (--org) or a project (-p) with usage.')
    .option('--org <org>')
    .addHelpText('after', '\nExamples:\n  kumo quota get --org acme\n  kumo quota get -p shop')
    .action(async (o: { org?: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const report = await inv.client.request<QuotaReport>('GET', scopeOf(o, cmd));
      writeQuotas(runtime, inv.format, report);
    });
  quota
    .command('set')
    .description(
      'Change quotas: an org\'s (operators) or a project\'s (org owners and admins). "none" removes a limit.',
    )
    .option('--org <org>')
    .option('--databases <n>', 'number of databases', parseLimit)
    .option('--storage-gb <n>', 'total storage of databases, GB', parseLimit)
    .option('--backups <n>', 'number of backups', parseLimit)
    .addHelpText(
      'after',
      '\nExamples:\n  kumo quota set --org acme --databases 20 --storage-gb 500\n  kumo quota set -p shop --databases 3 --backups none',
    )
    .action(
      async (o: { org?: string; databases?: Limit; storageGb?: Limit; backups?: Limit }, cmd: Command) => {
        const inv = await invocation(runtime, cmd);
        const body = Object.fromEntries(
          Object.entries({ databases: o.databases, storageGB: o.storageGb, backups: o.backups })
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => [k, v === 'none' ? null : v]),
        );
        const report = await inv.client.request<QuotaReport>('PATCH', scopeOf(o, cmd), { body });
        writeQuotas(runtime, inv.format, report);
      },
    );

  registerInvitationCommands(program, runtime);
}

function writeQuotas(runtime: Runtime, format: Parameters<typeof writeOutput>[1], report: QuotaReport): void {
  writeOutput(runtime.stdout, format, report, () =>
    table(
      ['QUOTA', 'LIMIT', 'USED', 'REMAINING'],
      report.items.map((i) => [
        i.quota,
        String(i.limit ?? 'none'),
        String(i.used),
        String(i.remaining ?? '-'),
      ]),
    ),
  );
}

/** A limit, or "none" for no limit (kept as a word: commander turns a parser's null into ""). */
type Limit = number | 'none';

function parseLimit(value: string): Limit {
  if (value === 'none') return 'none';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number, or "none".');
  return n;
}
