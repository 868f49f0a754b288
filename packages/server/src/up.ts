import type { AdminToken } from './bootstrap.js';
import { type UpOptions, resolveConfig } from './config.js';
import { KumoError } from './errors.js';
import { Kumo } from './kumo.js';
import { createLogger } from './logger.js';

/**
 * `kumo up`: starts Kumo in the foreground and prints where it is. Ctrl-C (SIGINT) or SIGTERM stops
 * it cleanly. Returns the process exit code: 0 after a clean stop, 2 when it could not start.
 */
export async function runUp(
  options: UpOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  // Whoever reads Kumo's output may go away (a closed terminal or log pipe): Kumo keeps running and
  // stops cleanly on its signal, instead of dying of the write error with its servers left running.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  let kumo: Kumo;
  let stopRequested: Promise<void>;
  try {
    const config = resolveConfig(options, env);
    const logger = createLogger(config.logLevel);
    kumo = await Kumo.start(config, logger);
    // Listening before saying so: whoever stops Kumo as soon as it is up must get a clean stop.
    // A terminal's Ctrl-C reaches every process of the group (npm, sh, node), so the same stop
    // request can arrive more than once: later signals are ignored while the first one shuts down.
    stopRequested = new Promise<void>((resolve) => {
      process.on('SIGINT', resolve);
      process.on('SIGTERM', resolve);
    });
    console.log(`Kumo is up.`);
    console.log(`  API:         ${kumo.url}`);
    console.log(`  OpenAPI:     ${kumo.url}/v1/openapi.json`);
    console.log(`  Data:        ${config.dataDir}`);
    for (const line of adminTokenLines(kumo.adminToken, kumo.url)) console.log(`  ${line}`);
    console.log(`Press Ctrl-C to stop.`);
  } catch (err) {
    if (err instanceof KumoError) {
      console.error(`kumo up: ${err.message}`);
      return 2;
    }
    throw err;
  }
  await stopRequested;
  console.log('Stopping Kumo…');
  await kumo.stop();
  console.log('Kumo stopped.');
  return 0;
}

/**
 * Where the admin token is. Its secret is printed once, when it is created: terminal scrollback and
 * captured logs of later starts do not carry it; they name the file it is in.
 */
export function adminTokenLines({ token, file, created }: AdminToken, url?: string): string[] {
  // The line to copy, with this data directory's file (a shell-quoted path), whoever runs it.
  const login = url
    ? [`Log in:      kumo login --url ${url} --token "$(cat '${file.replaceAll("'", "'\\''")}')"`]
    : [];
  if (created) return [`Admin token: ${token} (new)`, `Token file:  ${file}`, ...login];
  return token
    ? [`Token file:  ${file} (the admin token, printed only when it was created)`, ...login]
    : [
        `Token file:  ${file} (not here: the admin token was created earlier, by this Kumo or another on the same store, and its file is where that one wrote it)`,
      ];
}
