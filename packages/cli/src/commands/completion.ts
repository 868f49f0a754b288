import { KINDS, type KindDefinition } from '@kumo/api';
import { Argument, type Command, type Option } from 'commander';
import { KumoClient } from '../core/client.js';
import { loadConfig, resolveContext } from '../core/config.js';
import { nounOf, resolveKind } from '../core/kinds.js';
import type { Runtime } from '../core/runtime.js';
import { visibleCommands } from './meta.js';
import { listResources } from './resources.js';

/** How long a Tab waits for the API before it offers only what the command tree knows. */
const API_DEADLINE_MS = 1500;

/**
 * Where the values of an argument or option come from, read from how the command declares it: a
 * placeholder naming a kind (`--db <database>`, `--from-backup <backup>`, `-p, --project <project>`)
 * offers the names of that kind; `<kind>` the kinds `kumo get` takes; `context` the saved contexts;
 * `.choices()` its choices. A `<name>` is named by what it follows: the `<kind>` argument before it
 * (`kumo get KIND NAME`), the option it belongs to (`--context <name>`), or else the command and
 * its groups, innermost first, each by the last word of its name (`kumo db get <name>` → databases,
 * `kumo config use-context <name>` → contexts); under `create` a name is new and offers nothing.
 * A new command gets completion by declaring its arguments this way.
 */
type Source = { kind: KindDefinition } | 'kinds' | 'contexts' | { choices: readonly string[] };

/** What the words typed so far (after `kumo`) leave to complete. */
interface Position {
  /** The command the words name, e.g. `db get`. */
  command: Command;
  /** The word being completed; '' at a fresh word. */
  partial: string;
  slot:
    | { type: 'word'; source: Source | undefined } // a subcommand or the next argument
    | { type: 'value'; source: Source | undefined } // the value of the option before it
    | { type: 'flag' } // an option name
    | { type: 'rest' }; // after `--`: the words a command hands on (db connect … -- …)
  /** -p/--project and --context found among the words. */
  project?: string;
  context?: string;
}

/**
 * The candidates for the last of `words` (the words after `kumo`; the last one partial, possibly
 * ''), one per entry, starting with it: subcommands and options from the command tree, names of
 * resources from the API. Never throws and never waits for the API longer than API_DEADLINE_MS:
 * a lookup that fails or is slow offers nothing, and a word position with nothing to offer offers
 * the command's options, as the completion did before it asked the API.
 */
export async function complete(
  program: Command,
  words: readonly string[],
  runtime: Runtime,
): Promise<string[]> {
  const at = locate(program, words);
  let offered: string[];
  if (at.slot.type === 'rest') offered = [];
  else if (at.slot.type === 'flag') offered = flags(at.command);
  else {
    const values = at.slot.source ? await valuesOf(at.slot.source, at, runtime) : [];
    if (at.slot.type === 'value') offered = values;
    else {
      offered = [...visibleCommands(at.command).map((c) => c.name()), ...values];
      if (offered.length === 0) offered = flags(at.command);
    }
  }
  return [...new Set(offered)].filter((c) => c.startsWith(at.partial));
}

function locate(program: Command, words: readonly string[]): Position {
  const typed = words.slice(0, -1);
  const partial = words.at(-1) ?? '';
  let command = program;
  let index = 0; // the arguments of `command` typed so far
  let kind: string | undefined; // what a `<kind>` argument was given
  const given: Record<string, string> = {};
  let pending: Option | undefined; // an option waiting for its value
  let rest = false;
  for (const word of typed) {
    if (pending) {
      given[pending.attributeName()] = word;
      pending = undefined;
    } else if (rest) continue;
    else if (word === '--') rest = true;
    else if (word.startsWith('-') && word.length > 1) {
      const eq = word.indexOf('=');
      const flag = eq > 0 ? word.slice(0, eq) : word;
      const option = optionsOf(command).find((o) => o.long === flag || o.short === flag);
      if (!option || !(option.required || option.optional)) continue;
      if (eq > 0) given[option.attributeName()] = word.slice(eq + 1);
      else pending = option;
    } else {
      const sub = visibleCommands(command).find((c) => c.name() === word || c.aliases().includes(word));
      if (sub) {
        command = sub;
        index = 0;
        continue;
      }
      if (argumentAt(command, index++)?.name() === 'kind') kind = word;
    }
  }
  const slot: Position['slot'] = pending
    ? { type: 'value', source: optionSource(pending) }
    : rest
      ? { type: 'rest' }
      : partial.startsWith('-')
        ? { type: 'flag' }
        : { type: 'word', source: argumentSource(command, argumentAt(command, index), kind) };
  return {
    command,
    partial,
    slot,
    ...(given.project ? { project: given.project } : {}),
    ...(given.context ? { context: given.context } : {}),
  };
}

/** The options a command takes: its own and its groups' (the global ones are the program's). */
function optionsOf(command: Command): Option[] {
  const options: Option[] = [];
  for (let c: Command | null = command; c; c = c.parent) options.push(...c.options);
  return options;
}

function flags(command: Command): string[] {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) {
    for (const o of c.createHelp().visibleOptions(c)) names.push(o.long ?? o.short!);
  }
  return names;
}

/** The argument at position index; the last one takes the rest when it is variadic. */
function argumentAt(command: Command, index: number): Argument | undefined {
  const args = command.registeredArguments;
  const last = args.at(-1);
  return args[index] ?? (last?.variadic ? last : undefined);
}

function argumentSource(
  command: Command,
  argument: Argument | undefined,
  kind: string | undefined,
): Source | undefined {
  if (!argument) return undefined;
  if (argument.argChoices) return { choices: argument.argChoices };
  if (argument.name() !== 'name') return sourceNamed(argument.name());
  if (kind !== undefined) {
    const def = kindNamed(kind);
    return def ? { kind: def } : undefined;
  }
  if (command.name() === 'create') return undefined;
  for (let c: Command | null = command; c; c = c.parent) {
    const source = sourceNamed(c.name().split('-').at(-1)!);
    if (source && source !== 'kinds') return source;
  }
  return undefined;
}

function optionSource(option: Option): Source | undefined {
  if (option.argChoices) return { choices: option.argChoices };
  const placeholder = /[<[]([^>\]]+)[>\]]/.exec(option.flags)?.[1] ?? '';
  const source = sourceNamed(placeholder === 'name' ? option.name() : placeholder);
  // An option's --kind is the API's filter ("Database"), not the words `kumo get` takes.
  return source === 'kinds' ? undefined : source;
}

function sourceNamed(word: string): Source | undefined {
  if (word === 'kind') return 'kinds';
  if (word === 'context') return 'contexts';
  const def = kindNamed(word);
  return def ? { kind: def } : undefined;
}

/** The kind a word names, as `kumo get` reads it (aliases included), or undefined. */
function kindNamed(word: string): KindDefinition | undefined {
  try {
    return resolveKind(word);
  } catch {
    return undefined;
  }
}

/** The words `kumo get` takes for each kind: its noun ("db"), kind and plural. */
const KIND_WORDS = KINDS.flatMap((k) => [nounOf(k.kind), k.kind.toLowerCase(), k.plural]);

/** The values a source offers; [] when they cannot be had (not logged in, no project, no answer in time). */
async function valuesOf(source: Source, at: Position, runtime: Runtime): Promise<string[]> {
  if (source === 'kinds') return KIND_WORDS;
  try {
    if (source === 'contexts') return Object.keys((await loadConfig(runtime.env)).contexts);
    if ('choices' in source) return [...source.choices];
    const context = await resolveContext(runtime.env, at.context);
    const inv = {
      client: new KumoClient(context),
      project: at.project ?? context.project,
      format: 'table' as const,
      wait: false,
      timeoutMs: API_DEADLINE_MS,
    };
    const resources = await withDeadline(listResources(inv, source.kind), API_DEADLINE_MS);
    return resources.map((r) => r.metadata.name);
  } catch {
    return [];
  }
}

/**
 * The work's value, or a rejection once ms have passed. The request itself is left running (the
 * client takes no signal for it); `kumo` exits as soon as the candidates are printed, which ends it.
 */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  const signal = AbortSignal.timeout(ms);
  const late = new Promise<never>((_, reject) =>
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
  );
  return Promise.race([work, late]);
}

/** Bash: each Tab asks `kumo __complete` for the candidates. */
export function bashCompletion(): string {
  return `# kumo bash completion. Load with: source <(kumo completion bash)
# Each Tab runs \`kumo __complete\`: commands and options from the command tree, resource names from
# the API of the current context (or --context, -p/--project on the line), when it answers in time.
_kumo() {
  local IFS=$'\\n'
  COMPREPLY=( $(kumo __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )
}
complete -F _kumo kumo
`;
}

/** Zsh: its own function (bashcompinit would drop the empty word being completed). */
export function zshCompletion(): string {
  return `#compdef kumo
# kumo zsh completion. Load with: source <(kumo completion zsh) after compinit, or save it as _kumo
# in a directory of $fpath. Each Tab runs \`kumo __complete\`, as the bash completion does.
_kumo() {
  local -a candidates
  candidates=( \${(f)"$(kumo __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)"} )
  compadd -- "\${candidates[@]}"
}
if [ "$funcstack[1]" = "_kumo" ]; then _kumo "$@"; else compdef _kumo kumo; fi
`;
}

export function fishCompletion(): string {
  return `# kumo fish completion. Load with: kumo completion fish | source
# (or save it as ~/.config/fish/completions/kumo.fish). Each Tab runs \`kumo __complete\`.
function __kumo_complete
    set -l typed (commandline -opc)
    set -l partial (commandline -ct)
    kumo __complete -- $typed[2..-1] "$partial" 2>/dev/null
end
complete -c kumo -f -a '(__kumo_complete)'
`;
}

const SCRIPTS = { bash: bashCompletion, zsh: zshCompletion, fish: fishCompletion };

/** `kumo completion SHELL`, and the hidden `kumo __complete WORDS…` its scripts call on each Tab. */
export function registerCompletionCommands(program: Command, runtime: Runtime): void {
  program
    .command('completion')
    .description(
      'Print a shell completion script (bash, zsh or fish). It completes commands and options, and the names of resources from the API of the current context.',
    )
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(Object.keys(SCRIPTS)))
    .addHelpText(
      'after',
      '\nExamples:\n  source <(kumo completion bash)   # in ~/.bashrc\n  kumo completion zsh > "${fpath[1]}/_kumo"\n  kumo completion fish > ~/.config/fish/completions/kumo.fish\n  kumo db get <Tab>                # the databases of the project\n  kumo get db -p shop <Tab>        # of another project',
    )
    .action((shell: keyof typeof SCRIPTS) => {
      runtime.stdout.write(SCRIPTS[shell]());
    });

  program
    .command('__complete', { hidden: true })
    .description('Print the candidates for the last word, one per line (what the completion scripts run).')
    .argument('[words...]', 'the words after kumo; the last one is being completed (pass -- first)')
    .allowUnknownOption()
    .helpOption(false)
    .action(async () => {
      for (const candidate of await complete(program, typedWords(program), runtime))
        runtime.stdout.write(`${candidate}\n`);
    });
}

/**
 * The words after `__complete` as the shell split them. Read from the raw command line: commander
 * would take the program's own options (-p) out of the parsed words and drop a later `--`.
 */
function typedWords(program: Command): string[] {
  const raw = (program as Command & { rawArgs: string[] }).rawArgs;
  const words = raw.slice(raw.indexOf('__complete') + 1);
  return words[0] === '--' ? words.slice(1) : words;
}
