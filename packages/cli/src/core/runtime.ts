import type { Command } from 'commander';
import { KumoClient } from './client.js';
import { resolveContext } from './config.js';
import { parseFormat, type OutputFormat } from './output.js';
import { parseDuration } from './wait.js';

/** What commands use from the outside world; tests pass their own. */
export interface Runtime {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

export function processRuntime(): Runtime {
  return { env: process.env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
}

/** Options every command can take (declared on the program). */
export interface GlobalOptions {
  context?: string;
  project?: string;
  output?: string;
  wait?: boolean;
  timeout?: string;
}

/** The resolved view of the global options for a command. */
export interface Invocation {
  client: KumoClient;
  project: string | undefined;
  format: OutputFormat;
  wait: boolean;
  timeoutMs: number;
}

export async function invocation(runtime: Runtime, command: Command): Promise<Invocation> {
  const opts = command.optsWithGlobals<GlobalOptions>();
  const context = await resolveContext(runtime.env, opts.context);
  return {
    client: new KumoClient(context),
    project: opts.project ?? context.project,
    format: parseFormat(opts.output),
    wait: opts.wait ?? false,
    timeoutMs: parseDuration(opts.timeout ?? '5m'),
  };
}
