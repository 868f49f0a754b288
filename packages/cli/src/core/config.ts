import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError, EXIT } from './exit-codes.js';

/** One Kumo the CLI can talk to. */
export interface Context {
  url: string;
  token: string;
  /** Used when a command needs a project and none is given. */
  project?: string;
}

export interface CliConfig {
  current?: string;
  contexts: Record<string, Context>;
}

/**
 * Where contexts are kept: $KUMO_CONFIG, else $XDG_CONFIG_HOME/kumo/config.json, else
 * ~/.config/kumo/config.json. An empty variable counts as unset (the XDG rule), so tokens never
 * land in ./kumo/ of the current directory; a relative XDG_CONFIG_HOME is ignored likewise.
 */
export function configPath(env: NodeJS.ProcessEnv): string {
  if (env.KUMO_CONFIG) return env.KUMO_CONFIG;
  const xdg = env.XDG_CONFIG_HOME?.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(xdg, 'kumo', 'config.json');
}

export async function loadConfig(env: NodeJS.ProcessEnv): Promise<CliConfig> {
  try {
    return JSON.parse(await readFile(configPath(env), 'utf8')) as CliConfig;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: {} };
    throw new CliError(`Cannot read ${configPath(env)}: ${(err as Error).message}`, EXIT.failure);
  }
}

/** Saved with mode 0600: it holds tokens. */
export async function saveConfig(env: NodeJS.ProcessEnv, config: CliConfig): Promise<void> {
  const file = configPath(env);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
}

/**
 * The context to use: KUMO_URL / KUMO_TOKEN / KUMO_PROJECT override the current context's fields
 * (so scripts and CI need no config file). Throws a CliError saying how to log in when neither is there.
 */
export async function resolveContext(env: NodeJS.ProcessEnv, name?: string): Promise<Context> {
  const config = await loadConfig(env);
  const chosen = name ?? config.current;
  const saved = chosen ? config.contexts[chosen] : undefined;
  if (name && !saved) throw new CliError(`No context "${name}". See \`kumo context list\`.`, EXIT.usage);
  const url = env.KUMO_URL ?? saved?.url;
  const token = env.KUMO_TOKEN ?? saved?.token;
  if (!url || !token) {
    throw new CliError(
      'Not logged in. Run `kumo login --url URL --token TOKEN`, or set KUMO_URL and KUMO_TOKEN.',
      EXIT.auth,
    );
  }
  const project = env.KUMO_PROJECT ?? saved?.project;
  return { url: url.replace(/\/+$/, ''), token, ...(project ? { project } : {}) };
}
