import { type Resource, databaseUserKind } from '@kumo/api';
import { type Command, Option } from 'commander';
import { collectionPath, itemPath } from '../core/kinds.js';
import { table, writeOutput } from '../core/output.js';
import { type Runtime, invocation } from '../core/runtime.js';
import { finish } from './resources.js';

const def = databaseUserKind;

/** The DatabaseUser commands beyond list/get/delete/label: create and credentials. */
export function registerDbUserCommands(program: Command, runtime: Runtime): void {
  const user = program.commands.find((c) => c.name() === 'db-user')!;
  user
    .command('create')
    .description(
      'Create a login of its own on a database (its server user is u_<name>). With --wait, returns when it can log in.',
    )
    .argument('<name>')
    .requiredOption('--db <database>', 'the database, in the same project')
    .addOption(
      new Option('--access <access>', 'what it may do on the database')
        .choices(['read-write', 'read-only'])
        .default('read-write'),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  kumo db-user create reporting --db orders --access read-only --wait\n  kumo db-user credentials reporting -o json | jq -r .uri\n  kumo db-user delete reporting --yes   # drops the login and ends its sessions',
    )
    .action(async (name: string, o: { db: string; access: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const res = await inv.client.request<Resource>('POST', collectionPath(def, inv.project), {
        body: { metadata: { name }, spec: { database: o.db, access: o.access } },
      });
      await finish(runtime, inv, def, res, 'created');
    });

  user
    .command('credentials')
    .description("Show the user's name, password and connection URI (recorded in the audit log).")
    .argument('<name>')
    .addHelpText('after', '\nExample:\n  kumo db-user credentials reporting')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const creds = await inv.client.request<Record<string, unknown>>(
        'GET',
        `${itemPath(def, inv.project, name)}/credentials`,
      );
      writeOutput(runtime.stdout, inv.format, creds, () =>
        table(
          ['FIELD', 'VALUE'],
          Object.entries(creds).map(([k, v]) => [k, String(v ?? '-')]),
        ),
      );
    });
}
