import { KINDS, type KindDefinition, type Resource } from '@kumo/api';
import { type Command, Option } from 'commander';
import { CliError, EXIT } from '../core/exit-codes.js';
import { collectionPath, itemPath, nounOf, resolveKind } from '../core/kinds.js';
import { formatResources, table, writeOutput } from '../core/output.js';
import { type Invocation, type Runtime, invocation } from '../core/runtime.js';
import { waitFor } from '../core/wait.js';
import { printAgentToken } from './target.js';

interface List {
  items: Resource[];
  metadata: { resourceVersion: string; continue?: string };
}

/** Every resource of a kind (all pages), optionally filtered by a label selector. */
export async function listResources(
  inv: Invocation,
  def: KindDefinition,
  selector?: string,
  allProjects = false,
): Promise<Resource[]> {
  if (!allProjects || def.scope !== 'project') return (await listWithVersion(inv, def, selector)).items;
  // Every project the token may see, one after another (the API lists per project).
  const projects = await listResources(
    inv,
    KINDS.find((k) => k.kind === 'Project')!,
  );
  const lists = await Promise.all(
    projects.map((p) => listWithVersion({ ...inv, project: p.metadata.name }, def, selector)),
  );
  return lists.flatMap((l) => l.items);
}

/** Every resource of a kind and the resourceVersion of the first page (where a watch resumes). */
async function listWithVersion(
  inv: Invocation,
  def: KindDefinition,
  selector?: string,
): Promise<{ items: Resource[]; resourceVersion: string }> {
  const items: Resource[] = [];
  let resourceVersion: string | undefined;
  let cont: string | undefined;
  do {
    const query = new URLSearchParams({
      limit: '500',
      ...(selector ? { labelSelector: selector } : {}),
      ...(cont ? { continue: cont } : {}),
    });
    const page = await inv.client.request<List>('GET', `${collectionPath(def, inv.project)}?${query}`);
    items.push(...page.items);
    resourceVersion ??= page.metadata.resourceVersion;
    cont = page.metadata.continue;
  } while (cont);
  return { items, resourceVersion: resourceVersion ?? '0' };
}

/**
 * `get -w`: what there is now, then every change as it happens, until interrupted (a stream the
 * server ends is resumed from the last change seen). Tables print a row per change; -o json one
 * line per change, {"type": ADDED|MODIFIED|DELETED, "object": …}.
 */
async function watchResources(
  runtime: Runtime,
  inv: Invocation,
  def: KindDefinition,
  name: string | undefined,
  selector: string | undefined,
): Promise<void> {
  const { items, resourceVersion } = await listWithVersion(inv, def, selector);
  const now = name ? items.filter((r) => r.metadata.name === name) : items;
  const line = (type: string, r: Resource) =>
    inv.format === 'json'
      ? `${JSON.stringify({ type, object: r })}\n`
      : inv.format === 'yaml'
        ? `---\n${formatResources([r], 'yaml', true)}`
        : formatResources([r], 'table', true).split('\n').slice(1).join('\n');
  if (inv.format === 'table') runtime.stdout.write(formatResources(now, 'table', false));
  else for (const r of now) runtime.stdout.write(line('ADDED', r));
  let from = resourceVersion;
  for (;;) {
    await inv.client.watch(
      collectionPath(def, inv.project),
      from,
      (e) => {
        from = e.object.metadata.resourceVersion;
        if (e.type === 'ERROR' || (name && e.object.metadata.name !== name)) return;
        runtime.stdout.write(line(e.type, e.object));
      },
      undefined,
      selector ? { labelSelector: selector } : {},
    );
  }
}

export async function getResource(inv: Invocation, def: KindDefinition, name: string): Promise<Resource> {
  return inv.client.request<Resource>('GET', itemPath(def, inv.project, name));
}

/** Prints, and with --wait follows the resource until it is done. */
export async function finish(
  runtime: Runtime,
  inv: Invocation,
  def: KindDefinition,
  written: Resource,
  verb: string,
): Promise<void> {
  const final = inv.wait
    ? await waitFor(inv.client, collectionPath(def, inv.project), written, {
        timeoutMs: inv.timeoutMs,
        progress: runtime.stderr,
      })
    : written;
  if (inv.format === 'table') runtime.stdout.write(`${nounOf(def.kind)}/${final.metadata.name} ${verb}\n`);
  else runtime.stdout.write(formatResources([final], inv.format, true));
}

/** Deletes after a confirmation: on a terminal, typing the name; otherwise --yes is required. */
export async function deleteResource(
  runtime: Runtime,
  inv: Invocation,
  def: KindDefinition,
  name: string,
  yes: boolean,
): Promise<void> {
  if (!yes) await confirm(runtime, def, name);
  const res = await inv.client.request<Resource>('DELETE', itemPath(def, inv.project, name));
  if (inv.wait)
    await waitFor(inv.client, collectionPath(def, inv.project), res, {
      timeoutMs: inv.timeoutMs,
      progress: runtime.stderr,
      gone: true,
    }).catch(gone(res));
  runtime.stdout.write(
    `${nounOf(def.kind)}/${name} ${inv.wait || !res.metadata.finalizers.length ? 'deleted' : 'deleting'}\n`,
  );
}

function gone(res: Resource) {
  return (err: unknown) => {
    // Gone before the watch started is success too.
    if (res.metadata.finalizers.length === 0) return res;
    throw err;
  };
}

async function confirm(runtime: Runtime, def: KindDefinition, name: string): Promise<void> {
  const what =
    def.kind === 'Database'
      ? 'its server and all its data'
      : def.kind === 'Project'
        ? 'everything in it'
        : def.kind === 'Org'
          ? 'all its projects and everything in them'
          : 'it';
  if (!runtime.stdin.isTTY) {
    throw new CliError(
      `Deleting ${nounOf(def.kind)}/${name} removes ${what}. Pass --yes to confirm (stdin is not a terminal).`,
      EXIT.usage,
    );
  }
  runtime.stderr.write(`Deleting ${nounOf(def.kind)}/${name} removes ${what}. Type its name to confirm: `);
  const answer = await new Promise<string>((resolve) => {
    runtime.stdin.once('data', (d: Buffer) => resolve(d.toString().trim()));
    runtime.stdin.resume();
  });
  runtime.stdin.pause();
  if (answer !== name) throw new CliError('Not confirmed; nothing was deleted.', EXIT.failure);
}

export function parseLabels(values: string[] = []): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const v of values) {
    const [key, ...rest] = v.split('=');
    if (!key || rest.length === 0) throw new CliError(`--label takes key=value (got "${v}").`, EXIT.usage);
    labels[key] = rest.join('=');
  }
  return labels;
}

function example(def: KindDefinition): string {
  return (
    { Org: 'acme', Project: 'shop', Target: 'local', Database: 'orders', Webhook: 'ci' }[def.kind] ??
    'example'
  );
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `kumo get`, `kumo delete KIND NAME`, and per kind `kumo <noun> list|get|delete|label`; `create` for simple kinds. */
export function registerResourceCommands(program: Command, runtime: Runtime): void {
  program
    .command('get')
    .description('Show resources of a kind, or one by name.')
    .argument('<kind>', `one of ${KINDS.map((k) => k.plural).join(', ')} (db for databases)`)
    .argument('[name]')
    .option('-l, --selector <selector>', 'label selector, e.g. env=prod,tier!=db')
    .option('-w, --watch', 'after the current state, print every change as it happens (until Ctrl-C)')
    .option('-A, --all-projects', 'of every project you can see (kinds that live in projects)')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo get orgs\n  kumo get db --project shop -l env=prod\n  kumo get db orders -o yaml > orders.yaml\n  kumo get db -w                # a row per change\n  kumo get db orders -w -o json  # a line per change: {"type":"MODIFIED","object":{…}}',
    )
    .action(
      async (
        kind: string,
        name: string | undefined,
        o: { selector?: string; watch?: boolean; allProjects?: boolean },
        cmd: Command,
      ) => {
        const inv = await invocation(runtime, cmd);
        const def = resolveKind(kind);
        if (o.allProjects && (name || o.watch))
          throw new CliError('-A lists: it takes no name and no --watch (watch one project).', EXIT.usage);
        if (o.watch) return watchResources(runtime, inv, def, name, o.selector);
        const resources = name
          ? [await getResource(inv, def, name)]
          : await listResources(inv, def, o.selector, o.allProjects);
        runtime.stdout.write(formatResources(resources, inv.format, Boolean(name)));
      },
    );

  for (const def of KINDS) {
    const noun = nounOf(def.kind);
    const group = program.command(noun).description(`Manage ${def.plural}: ${def.description}`);
    group
      .command('list')
      .description(`List ${def.plural}.`)
      .option('-l, --selector <selector>', 'label selector, e.g. env=prod')
      .option('-A, --all-projects', 'of every project you can see')
      .addHelpText(
        'after',
        `\nExamples:\n  kumo ${noun} list${def.scope === 'project' ? ' --project shop' : ''}\n  kumo ${noun} list -l env=prod -o json`,
      )
      .action(async (o: { selector?: string; allProjects?: boolean }, cmd: Command) => {
        const inv = await invocation(runtime, cmd);
        runtime.stdout.write(
          formatResources(await listResources(inv, def, o.selector, o.allProjects), inv.format, false),
        );
      });
    group
      .command('get')
      .description(`Show one ${def.kind}.`)
      .argument('<name>')
      .addHelpText(
        'after',
        `\nExamples:\n  kumo ${noun} get ${example(def)}\n  kumo ${noun} get ${example(def)} -o yaml > ${example(def)}.yaml`,
      )
      .action(async (name: string, _o: unknown, cmd: Command) => {
        const inv = await invocation(runtime, cmd);
        runtime.stdout.write(formatResources([await getResource(inv, def, name)], inv.format, true));
      });
    group
      .command('delete')
      .description(
        `Delete a ${def.kind}${def.kind === 'Org' || def.kind === 'Project' ? ' and everything in it' : ''}.`,
      )
      .argument('<name>')
      .option('-y, --yes', 'do not ask for confirmation')
      .addHelpText(
        'after',
        `\nExamples:\n  kumo ${noun} delete ${example(def)}          # asks you to type the name\n  kumo ${noun} delete ${example(def)} --yes --wait`,
      )
      .action(async (name: string, o: { yes?: boolean }, cmd: Command) => {
        await deleteResource(runtime, await invocation(runtime, cmd), def, name, o.yes ?? false);
      });
    group
      .command('label')
      .description(`Set (key=value) or remove (key-) labels of a ${def.kind}.`)
      .argument('<name>')
      .argument('<labels...>')
      .addHelpText(
        'after',
        `\nExamples:\n  kumo ${noun} label ${example(def)} env=prod team=payments\n  kumo ${noun} label ${example(def)} team-`,
      )
      .action(async (name: string, labels: string[], _o: unknown, cmd: Command) => {
        const inv = await invocation(runtime, cmd);
        const patch: Record<string, string | null> = {};
        for (const l of labels) {
          if (l.endsWith('-') && !l.includes('=')) patch[l.slice(0, -1)] = null;
          else Object.assign(patch, parseLabels([l]));
        }
        const res = await inv.client.request<Resource>('PATCH', itemPath(def, inv.project, name), {
          body: { metadata: { labels: patch } },
          contentType: 'application/merge-patch+json',
        });
        await finish(runtime, { ...inv, wait: false }, def, res, 'labelled');
      });
    // Databases, backups, webhooks and database users have their own create (commands/db.ts,
    // backup.ts, webhook.ts, db-user.ts).
    if (['Database', 'Backup', 'Webhook', 'DatabaseUser'].includes(def.kind)) continue;
    const create = group
      .command('create')
      .description(`Create a ${def.kind}.`)
      .argument('<name>')
      .option('--label <key=value>', 'a label (repeatable)', collect)
      .option('--display-name <text>', 'human-readable name')
      .addHelpText(
        'after',
        def.kind === 'Project'
          ? '\nExample:\n  kumo project create shop --org acme --wait'
          : def.kind === 'Target'
            ? '\nExample:\n  kumo target create b --driver local --label zone=eu-1\n\nPrints the token its agent needs (kumo agent --target b).'
            : `\nExample:\n  kumo ${noun} create acme --display-name "Acme Inc." --wait`,
      );
    if (def.kind === 'Project') create.requiredOption('--org <org>', 'the owning org');
    if (def.kind === 'Target')
      create.addOption(
        new Option('--driver <driver>', 'runtime driver')
          .choices(['local', 'kubernetes'])
          .makeOptionMandatory(),
      );
    create.action(
      async (
        name: string,
        o: { label?: string[]; displayName?: string; org?: string; driver?: string },
        cmd: Command,
      ) => {
        const inv = await invocation(runtime, cmd);
        const spec =
          def.kind === 'Target'
            ? { driver: o.driver }
            : { ...(o.org ? { org: o.org } : {}), ...(o.displayName ? { displayName: o.displayName } : {}) };
        const res = await inv.client.request<Resource>('POST', collectionPath(def, inv.project), {
          body: { metadata: { name, labels: parseLabels(o.label) }, spec },
        });
        await finish(runtime, inv, def, res, 'created');
        if (def.kind === 'Target' && inv.format === 'table') await printAgentToken(runtime, inv, name);
      },
    );
  }

  program
    .command('events')
    .description(
      "What happened: a resource's events (oldest first, repeats counted), or without one those of everything in the project; --watch follows the project's as they happen.",
    )
    .argument('[kind]')
    .argument('[name]')
    .option(
      '-w, --watch',
      "after the latest events, print the project's new ones as they happen (until Ctrl-C)",
    )
    .addHelpText(
      'after',
      '\nExamples:\n  kumo events db orders --project shop\n  kumo events project shop -o json\n  kumo events -p shop            # everything in the project\n  kumo events -p shop --watch    # and then every new one (-o json: a line each)',
    )
    .action(
      async (kind: string | undefined, name: string | undefined, o: { watch?: boolean }, cmd: Command) => {
        const inv = await invocation(runtime, cmd);
        if (kind && !name)
          throw new CliError('Name the resource too: kumo events <kind> <name>.', EXIT.usage);
        if (o.watch || !kind) {
          const only = kind ? { def: resolveKind(kind), name: name! } : undefined;
          // A Project's own events are in itself: `kumo events project shop --watch` needs no -p.
          const project = only?.def.kind === 'Project' ? only.name : inv.project;
          return projectEvents(runtime, { ...inv, project }, o.watch ?? false, only);
        }
        const def = resolveKind(kind);
        const { items } = await inv.client.request<{
          items: Array<{
            type: string;
            reason: string;
            message: string;
            count: number;
            lastTimestamp: string;
          }>;
        }>('GET', `${itemPath(def, inv.project, name!)}/events`);
        writeOutput(runtime.stdout, inv.format, items, () =>
          table(
            ['LAST SEEN', 'TYPE', 'REASON', 'COUNT', 'MESSAGE'],
            items.map((e) => [e.lastTimestamp, e.type, e.reason, String(e.count), e.message.split('\n')[0]!]),
          ),
        );
      },
    );
}

interface ProjectEvent {
  id: string;
  involvedObject: { kind: string; project: string; name: string };
  type: string;
  reason: string;
  message: string;
  count: number;
  lastTimestamp: string;
}

/**
 * The events of everything in the project (GET /v1/projects/{project}/event-log), optionally of one
 * resource only; with `follow`, then every new one from the stream (resumed where it ended when the
 * server ends it) until interrupted. Tables print a row per event; -o json a line per event.
 */
export async function projectEvents(
  runtime: Runtime,
  inv: Invocation,
  follow: boolean,
  only?: { def: KindDefinition; name: string },
): Promise<void> {
  const project = inv.project;
  if (!project)
    throw new CliError(
      'Say which project: pass --project NAME (or set one with `kumo login --project`).',
      EXIT.usage,
    );
  const base = `/v1/projects/${encodeURIComponent(project)}/event-log`;
  const page = await inv.client.request<{ items: ProjectEvent[]; after: string }>('GET', `${base}?limit=100`);
  const wanted = (e: ProjectEvent) =>
    !only || (e.involvedObject.kind === only.def.kind && e.involvedObject.name === only.name);
  const headers = ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'COUNT', 'MESSAGE'];
  const row = (e: ProjectEvent) => [
    e.lastTimestamp,
    e.type,
    e.reason,
    `${nounOf(e.involvedObject.kind)}/${e.involvedObject.name}`,
    String(e.count),
    e.message.split('\n')[0]!,
  ];
  const items = page.items.filter(wanted);
  if (!follow) {
    writeOutput(runtime.stdout, inv.format, items, () => table(headers, items.map(row)));
    return;
  }
  const print = (e: ProjectEvent) =>
    runtime.stdout.write(
      inv.format === 'table'
        ? table(headers, [row(e)])
            .split('\n')
            .slice(1)
            .join('\n')
        : `${JSON.stringify(e)}\n`,
    );
  if (inv.format === 'table')
    runtime.stdout.write(items.length > 0 ? table(headers, items.map(row)) : `${headers.join('  ')}\n`);
  else for (const e of items) print(e);
  let after = page.after;
  for (;;) {
    let type = '';
    await inv.client.lines(`${base}?watch=true&after=${after}`, (line) => {
      if (line.startsWith('event: ')) type = line.slice(7);
      if (!line.startsWith('data: ')) return;
      const data = JSON.parse(line.slice(6)) as ProjectEvent & { detail?: string };
      if (type === 'ERROR') throw new CliError(data.detail ?? 'The event stream failed.', EXIT.failure);
      after = data.id;
      if (wanted(data)) print(data);
    });
  }
}
