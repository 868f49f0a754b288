import type { InvitationInfo, MemberInfo } from '@kumo/api';
import type { Command } from 'commander';
import { table, writeOutput } from '../core/output.js';
import { type Runtime, invocation } from '../core/runtime.js';

const path = encodeURIComponent;

/**
 * Invitations: how people join an org. Owners and admins invite a user name; the user of that name
 * accepts or declines with their own token.
 */
export function registerInvitationCommands(program: Command, runtime: Runtime): void {
  const invitation = program
    .command('invitation')
    .description(
      'Invitations to join an org: owners and admins invite a user name, and that user accepts or declines.',
    );
  invitation
    .command('create')
    .description(
      'Invite a user name into an org with a role, optionally only for some projects. They join when they accept; the answer is the same whether or not the user exists. Only owners invite owners.',
    )
    .argument('<user>')
    .requiredOption('--org <org>')
    .requiredOption('--role <role>', 'owner, admin, developer, viewer or billing')
    .option('--projects <names>', 'only in these projects (comma-separated); default: the whole org', list)
    .addHelpText(
      'after',
      '\nExamples:\n  kumo invitation create bob --org acme --role developer\n  kumo invitation create carol --org acme --role viewer --projects shop,blog',
    )
    .action(async (user: string, o: { org: string; role: string; projects?: string[] }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const made = await inv.client.request<InvitationInfo>('POST', `/v1/orgs/${path(o.org)}/invitations`, {
        body: { user, role: o.role, ...(o.projects ? { projects: o.projects } : {}) },
      });
      writeOutput(
        runtime.stdout,
        inv.format,
        made,
        () =>
          `invited ${made.user} to org ${made.org} as ${made.role}${made.projects ? ` in ${made.projects.join(', ')}` : ''} (invitation ${made.id}, until ${made.expiresAt.slice(0, 10)}); they join when they accept: kumo invitation accept ${made.id}\n`,
      );
    });
  invitation
    .command('list')
    .description("Your pending invitations; with --org, the org's (owners and admins).")
    .option('--org <org>')
    .addHelpText('after', '\nExamples:\n  kumo invitation list\n  kumo invitation list --org acme')
    .action(async (o: { org?: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const { items } = await inv.client.request<{ items: InvitationInfo[] }>(
        'GET',
        o.org ? `/v1/orgs/${path(o.org)}/invitations` : '/v1/invitations',
      );
      writeOutput(runtime.stdout, inv.format, items, () =>
        items.length === 0
          ? 'No pending invitations.\n'
          : table(
              ['ID', 'ORG', 'USER', 'ROLE', 'PROJECTS', 'INVITED BY', 'EXPIRES'],
              items.map((i) => [
                i.id,
                i.org,
                i.user,
                i.role,
                i.projects?.join(',') ?? 'all',
                i.invitedBy,
                i.expiresAt.slice(0, 10),
              ]),
            ),
      );
    });
  invitation
    .command('accept')
    .description('Accept an invitation made out to you: you become a member of its org with its role.')
    .argument('<id>')
    .addHelpText('after', '\nExample:\n  kumo invitation accept 3f0c9b6e-…')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const m = await inv.client.request<MemberInfo>('POST', `/v1/invitations/${path(id)}/accept`);
      writeOutput(
        runtime.stdout,
        inv.format,
        m,
        () => `you are ${m.role} of org ${m.org}${m.projects ? ` in ${m.projects.join(', ')}` : ''}\n`,
      );
    });
  invitation
    .command('decline')
    .description('Decline an invitation made out to you.')
    .argument('<id>')
    .addHelpText('after', '\nExample:\n  kumo invitation decline 3f0c9b6e-…')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const declined = await inv.client.request<InvitationInfo>(
        'POST',
        `/v1/invitations/${path(id)}/decline`,
      );
      writeOutput(
        runtime.stdout,
        inv.format,
        declined,
        () => `declined the invitation to org ${declined.org}\n`,
      );
    });
  invitation
    .command('cancel')
    .description('Cancel a pending invitation of an org (owners and admins; owners only for owners).')
    .argument('<id>')
    .requiredOption('--org <org>')
    .addHelpText('after', '\nExample:\n  kumo invitation cancel 3f0c9b6e-… --org acme')
    .action(async (id: string, o: { org: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const cancelled = await inv.client.request<InvitationInfo>(
        'DELETE',
        `/v1/orgs/${path(o.org)}/invitations/${path(id)}`,
      );
      writeOutput(
        runtime.stdout,
        inv.format,
        cancelled,
        () => `cancelled the invitation of ${cancelled.user} to org ${cancelled.org}\n`,
      );
    });
}

/** A comma-separated list of names. */
export function list(value: string): string[] {
  return value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}
