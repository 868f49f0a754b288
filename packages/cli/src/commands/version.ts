import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { KumoClient } from '../core/client.js';
import { resolveContext } from '../core/config.js';
import { parseFormat, writeOutput } from '../core/output.js';
import type { Runtime } from '../core/runtime.js';

/** This CLI's version, from its package.json. */
export const CLIENT_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** The client's version and, when a context (or KUMO_URL) names a server, the server's. */
export async function versions(
  runtime: Runtime,
  contextName?: string,
): Promise<{ client: string; server?: { url: string; version?: string; error?: string } }> {
  const context = await resolveContext(runtime.env, contextName).catch(() => undefined);
  if (!context) return { client: CLIENT_VERSION };
  try {
    // The OpenAPI document is public and carries the server's version.
    const doc = await new KumoClient(context).request<{ info: { version: string } }>(
      'GET',
      '/v1/openapi.json',
    );
    return { client: CLIENT_VERSION, server: { url: context.url, version: doc.info.version } };
  } catch (err) {
    return { client: CLIENT_VERSION, server: { url: context.url, error: (err as Error).message } };
  }
}

export function registerVersionCommand(program: Command, runtime: Runtime): void {
  program
    .command('version')
    .description("Show this CLI's version and, when logged in, the server's (also: kumo --version).")
    .addHelpText('after', '\nExamples:\n  kumo version\n  kumo --version\n  kumo version -o json')
    .action(async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ context?: string; output?: string }>();
      const v = await versions(runtime, opts.context);
      writeOutput(runtime.stdout, parseFormat(opts.output ?? 'table'), v, () =>
        [
          `Client: ${v.client}`,
          ...(v.server
            ? [`Server: ${v.server.version ?? `unknown (${v.server.error})`} at ${v.server.url}`]
            : ['Server: not logged in (kumo login)']),
          '',
        ].join('\n'),
      );
    });
}
