import { Command } from 'commander';
import { registerAdminCommands } from './commands/admin.js';
import { registerDbCommands } from './commands/db.js';
import { registerDbUserCommands } from './commands/db-user.js';
import { registerDeclarativeCommands } from './commands/declarative.js';
import { registerDescribeCommand } from './commands/describe.js';
import { registerEditCommand } from './commands/edit.js';
import { registerIamCommands } from './commands/iam.js';
import { registerInvoiceCommands } from './commands/invoice.js';
import { registerPriceCommands } from './commands/price.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerCompletionCommands } from './commands/completion.js';
import { registerConfigCommands } from './commands/config.js';
import { registerCostCommand } from './commands/cost.js';
import { registerResourceCommands } from './commands/resources.js';
import { registerServeCommands } from './commands/serve.js';
import { registerSessionCommands } from './commands/session.js';
import { registerTargetCommands } from './commands/target.js';
import { registerTerraformCommands } from './commands/terraform.js';
import { registerUsageCommand } from './commands/usage.js';
import { registerVersionCommand } from './commands/version.js';
import { registerWebhookCommands } from './commands/webhook.js';
import type { Runtime } from './core/runtime.js';

/** The whole `kumo` command tree. Pure construction: nothing runs until it is parsed. */
export function buildProgram(runtime: Runtime): Command {
  const program = new Command('kumo')
    .description(
      'Kumo: a self-hosted cloud platform for managed databases. This command talks to its HTTP API. `kumo --version` is `kumo version`.',
    )
    .option('--context <name>', 'use this saved context instead of the current one')
    .option('-p, --project <project>', "the project (default: the context's, or KUMO_PROJECT)")
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .option('--wait', 'wait until the change is done (Ready for its latest generation)')
    .option('--timeout <duration>', 'how long --wait waits, e.g. 90s, 5m', '5m')
    .exitOverride() // subcommands inherit it: bin.ts maps commander's refusals to exit 2
    .configureOutput({ writeOut: (s) => runtime.stdout.write(s), writeErr: (s) => runtime.stderr.write(s) });

  registerServeCommands(program, runtime);
  registerSessionCommands(program, runtime);
  registerConfigCommands(program, runtime);
  registerVersionCommand(program, runtime);
  registerResourceCommands(program, runtime);
  registerDescribeCommand(program, runtime);
  registerEditCommand(program, runtime);
  registerDbCommands(program, runtime);
  registerBackupCommands(program, runtime);
  registerDbUserCommands(program, runtime);
  registerDeclarativeCommands(program, runtime);
  registerAdminCommands(program, runtime);
  registerTargetCommands(program, runtime);
  registerWebhookCommands(program, runtime);
  registerIamCommands(program, runtime);
  registerCostCommand(program, runtime);
  registerUsageCommand(program, runtime);
  registerPriceCommands(program, runtime);
  registerInvoiceCommands(program, runtime);
  registerTerraformCommands(program, runtime);
  registerCompletionCommands(program, runtime);
  hintAfterErrors(program, 'kumo');
  return program;
}

/** A refused command line gets its error and one line naming the help to read, not the whole help. */
function hintAfterErrors(command: Command, path: string): void {
  command.showHelpAfterError(`(see \`${path} --help\`)`);
  for (const sub of command.commands) hintAfterErrors(sub, `${path} ${sub.name()}`);
}
