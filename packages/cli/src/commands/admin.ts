import type { AuditEntry, TokenInfo } from '@kumo/api';
import type { Command } from 'commander';
import { table, writeOutput } from '../core/output.js';
import { type Runtime, invocation } from '../core/runtime.js';

/** API tokens and the audit log. */
export function registerAdminCommands(program: Command, runtime: Runtime): void {
  const token = program.command('token').description('Create, list and revoke API tokens.');
  token
    .command('create')
    .description(
      'Create an API token. The secret is printed once; only its hash is kept. A token never has a role above the token that creates it.',
    )
    .argument('<name>', 'what it is for, e.g. ci-deploy')
    .option('--expires-in-days <days>', 'expire after this many days (default: never)', (v: string) =>
      Number(v),
    )
    .option(
      '--role <role>',
      'the most it may do: owner, admin, developer, viewer or billing (default: yours)',
    )
    .option('--org <org>', 'a service token of this org, or limit a personal token to it')
    .option('--projects <names>', 'limit it to these projects of --org (comma-separated)', splitList)
    .option('--service', 'a service token of --org: it belongs to the org, not to you (needs --role)')
    .option('--user <user>', 'operators: a personal token for this user (e.g. their first one), to hand over')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo token create laptop --expires-in-days 90\n  kumo token create ci-deploy --service --org acme --role developer --projects shop\n  kumo token create first --user alice        # operators, to hand over',
    )
    .action(
      async (
        name: string,
        o: {
          expiresInDays?: number;
          role?: string;
          org?: string;
          projects?: string[];
          service?: boolean;
          user?: string;
        },
        cmd: Command,
      ) => {
        const inv = await invocation(runtime, cmd);
        const body = Object.fromEntries(Object.entries({ name, ...o }).filter(([, v]) => v !== undefined));
        const created = await inv.client.request<TokenInfo & { token: string }>('POST', '/v1/tokens', {
          body,
        });
        writeOutput(runtime.stdout, inv.format, created, () => `${created.token}\n`);
        if (inv.format === 'table')
          runtime.stderr.write(
            `Token "${name}" (id ${created.id}, ${rightsOf(created)}) created. Keep it now: it is not shown again.\n`,
          );
      },
    );
  token
    .command('list')
    .description('List your API tokens and the service tokens of orgs you administer (never their secrets).')
    .addHelpText('after', '\nExample:\n  kumo token list')
    .action(async (_o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const { items } = await inv.client.request<{ items: TokenInfo[] }>('GET', '/v1/tokens');
      writeOutput(runtime.stdout, inv.format, items, () =>
        table(
          ['ID', 'NAME', 'PREFIX', 'PRINCIPAL', 'ROLE', 'SCOPE', 'EXPIRES', 'LAST USED', 'STATE'],
          items.map((t) => [
            t.id,
            t.name,
            t.prefix,
            t.principal,
            t.role,
            t.org ? `${t.org}${t.projects ? `/${t.projects.join(',')}` : ''}` : '-',
            t.expiresAt ?? 'never',
            t.lastUsedAt ?? '-',
            t.revokedAt
              ? 'revoked'
              : t.expiresAt && Date.parse(t.expiresAt) < Date.now()
                ? 'expired'
                : 'active',
          ]),
        ),
      );
    });
  token
    .command('revoke')
    .description('Revoke an API token: it stops working at once.')
    .argument('<id>')
    .addHelpText('after', '\nExample:\n  kumo token revoke 0b6c…')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      await inv.client.request('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
      runtime.stdout.write(`token/${id} revoked\n`);
    });

  program
    .command('audit')
    .description(
      "The audit log: who changed what, and who read credentials, newest first. Org owners and admins see their org's (--org); operators see all.",
    )
    .option('--org <org>', 'the org (required unless you are an operator)')
    .option('--kind <kind>', 'e.g. Database')
    .option('--name <name>')
    .option('--actor <actor>')
    .option('--no-system', "leave out what Kumo itself did (its controllers' and agents' status updates)")
    .option('--since <time>', 'ISO time, e.g. 2026-11-22T00:00:00Z')
    .option('--limit <n>', 'how many entries', '100')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo audit --org acme --project shop --kind Database --no-system\n  kumo audit --actor operator:admin --since 2026-11-22T00:00:00Z -o json',
    )
    .action(
      async (
        o: {
          org?: string;
          kind?: string;
          name?: string;
          actor?: string;
          system: boolean;
          since?: string;
          limit: string;
        },
        cmd: Command,
      ) => {
        const inv = await invocation(runtime, cmd);
        const query = new URLSearchParams({ limit: o.limit });
        if (!o.system) query.set('system', 'false');
        for (const [k, v] of Object.entries({
          org: o.org,
          kind: o.kind,
          name: o.name,
          actor: o.actor,
          since: o.since,
          project: cmd.optsWithGlobals<{ project?: string }>().project,
        })) {
          if (v) query.set(k, v);
        }
        const { items } = await inv.client.request<{ items: AuditEntry[] }>('GET', `/v1/audit?${query}`);
        writeOutput(runtime.stdout, inv.format, items, () =>
          table(
            ['TIME', 'ACTOR', 'ACTION', 'RESOURCE', 'OUTCOME'],
            items.map((e) => [
              e.at,
              e.actor,
              e.action,
              `${e.kind} ${e.project ? `${e.project}/` : ''}${e.name}`,
              e.outcome,
            ]),
          ),
        );
      },
    );
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

/**
 * What a new token may do, in words. A personal token's role is a ceiling: it acts as its user and
 * may do what their memberships allow, never more than the role (an operator's token for a
 * developer says "at most owner" and is a developer's in practice).
 */
function rightsOf(token: TokenInfo): string {
  return token.principal.startsWith('user:')
    ? `${token.principal}: what their memberships allow, at most role ${token.role}`
    : `${token.principal}, role ${token.role}`;
}
