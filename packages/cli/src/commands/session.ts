import type { Command } from 'commander';
import { KumoClient } from '../core/client.js';
import { type Context, loadConfig, saveConfig, configPath } from '../core/config.js';
import { CliError, EXIT } from '../core/exit-codes.js';
import { table } from '../core/output.js';
import { forgetContext } from './config.js';
import type { Runtime } from '../core/runtime.js';

/** Checks the URL and token against the server, then saves them as a named context and makes it current. */
export async function login(
  runtime: Runtime,
  options: { url: string; token: string; name?: string; project?: string },
): Promise<string> {
  const context: Context = {
    url: options.url.replace(/\/+$/, ''),
    token: options.token,
    ...(options.project ? { project: options.project } : {}),
  };
  await new KumoClient(context).request('GET', '/v1/engines'); // proves both: reachable, and the token works
  const name = options.name ?? new URL(context.url).host.replace(/[^a-z0-9]+/gi, '-');
  const config = await loadConfig(runtime.env);
  config.contexts[name] = context;
  config.current = name;
  await saveConfig(runtime.env, config);
  return `Logged in to ${context.url} as context "${name}" (saved in ${configPath(runtime.env)}).\n`;
}

export function registerSessionCommands(program: Command, runtime: Runtime): void {
  program
    .command('login')
    .description(
      'Save a Kumo URL and token as a named context (checked against the server first) and use it.',
    )
    .requiredOption('--url <url>', 'the Kumo API, e.g. http://127.0.0.1:7070')
    .requiredOption(
      '--token <token>',
      'an API token (`kumo up` keeps the admin token in <data-dir>/admin-token)',
    )
    .option('--name <name>', 'context name (default: derived from the URL)')
    .option('--default-project <project>', 'project used when a command needs one and --project is not given')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo login --url http://127.0.0.1:7070 --token "$(cat ~/.local/share/kumo/admin-token)"\n  kumo login --url https://kumo.example.com --token kumo_… --name prod --default-project shop',
    )
    .action(async (o: { url: string; token: string; name?: string; defaultProject?: string }) => {
      runtime.stdout.write(
        await login(runtime, {
          url: o.url,
          token: o.token,
          ...(o.name ? { name: o.name } : {}),
          ...(o.defaultProject ? { project: o.defaultProject } : {}),
        }),
      );
    });

  program
    .command('logout')
    .description(
      "Forget the current context (or --context's) and its token on this machine. The token stays valid on the server: revoke it with kumo token revoke.",
    )
    .addHelpText('after', '\nExamples:\n  kumo logout\n  kumo logout --context staging')
    .action(async (_o: unknown, cmd: Command) => {
      runtime.stdout.write(await forgetContext(runtime, cmd.optsWithGlobals<{ context?: string }>().context));
    });

  const context = program.command('context').description('List and switch saved contexts.');
  context
    .command('list')
    .description('Show the saved contexts; * marks the current one.')
    .addHelpText('after', '\nExample:\n  kumo context list')
    .action(async () => {
      const config = await loadConfig(runtime.env);
      runtime.stdout.write(
        table(
          ['CURRENT', 'NAME', 'URL', 'PROJECT'],
          Object.entries(config.contexts).map(([name, c]) => [
            name === config.current ? '*' : '',
            name,
            c.url,
            c.project ?? '',
          ]),
        ),
      );
    });
  context
    .command('use')
    .description('Make a saved context the current one.')
    .argument('<name>')
    .addHelpText('after', '\nExample:\n  kumo context use prod')
    .action(async (name: string) => {
      const config = await loadConfig(runtime.env);
      if (!config.contexts[name])
        throw new CliError(`No context "${name}". See \`kumo context list\`.`, EXIT.usage);
      config.current = name;
      await saveConfig(runtime.env, config);
      runtime.stdout.write(`Using context "${name}".\n`);
    });
}
