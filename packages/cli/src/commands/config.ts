import type { Command } from 'commander';
import { loadConfig, saveConfig } from '../core/config.js';
import { CliError, EXIT } from '../core/exit-codes.js';
import { table } from '../core/output.js';
import type { Runtime } from '../core/runtime.js';

/** `kumo config …`: the saved contexts, by kubectl's names for the same things. */
export function registerConfigCommands(program: Command, runtime: Runtime): void {
  const config = program.command('config').description('The saved contexts (kumo login adds them).');
  config
    .command('get-contexts')
    .description('List the saved contexts; * marks the current one (as kumo context list).')
    .addHelpText('after', '\nExample:\n  kumo config get-contexts')
    .action(async () => {
      const saved = await loadConfig(runtime.env);
      runtime.stdout.write(
        table(
          ['CURRENT', 'NAME', 'URL', 'PROJECT'],
          Object.entries(saved.contexts).map(([name, c]) => [
            name === saved.current ? '*' : '',
            name,
            c.url,
            c.project ?? '',
          ]),
        ),
      );
    });
  config
    .command('current-context')
    .description('Print the name of the current context.')
    .addHelpText('after', '\nExample:\n  kumo config current-context')
    .action(async () => {
      const saved = await loadConfig(runtime.env);
      if (!saved.current) throw new CliError('No current context: log in with `kumo login`.', EXIT.usage);
      runtime.stdout.write(`${saved.current}\n`);
    });
  config
    .command('use-context')
    .description('Make a saved context the current one.')
    .argument('<name>')
    .addHelpText('after', '\nExample:\n  kumo config use-context prod')
    .action(async (name: string) => {
      const saved = await loadConfig(runtime.env);
      if (!saved.contexts[name])
        throw new CliError(`No context "${name}". See \`kumo config get-contexts\`.`, EXIT.usage);
      saved.current = name;
      await saveConfig(runtime.env, saved);
      runtime.stdout.write(`Using context "${name}".\n`);
    });
  config
    .command('delete-context')
    .description(
      'Forget a saved context and its token (the token itself stays valid: revoke it with kumo token revoke).',
    )
    .argument('<name>')
    .addHelpText('after', '\nExample:\n  kumo config delete-context staging')
    .action(async (name: string) => {
      runtime.stdout.write(await forgetContext(runtime, name));
    });
}

/** Removes a saved context (the current one when no name is given); says what it did. */
export async function forgetContext(runtime: Runtime, name?: string): Promise<string> {
  const saved = await loadConfig(runtime.env);
  const target = name ?? saved.current;
  if (!target || !saved.contexts[target])
    throw new CliError(
      target
        ? `No context "${target}". See \`kumo config get-contexts\`.`
        : 'Not logged in: there is no current context.',
      EXIT.usage,
    );
  delete saved.contexts[target];
  if (saved.current === target) delete saved.current;
  await saveConfig(runtime.env, saved);
  return `Context "${target}" and its token removed from this machine${saved.current ? `; still using "${saved.current}"` : ''}.\n`;
}
