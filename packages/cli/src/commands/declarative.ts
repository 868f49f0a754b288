import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { type KindDefinition, type Resource } from '@kumo/api';
import type { Command } from 'commander';
import { createTwoFilesPatch } from 'diff';
import { parseAllDocuments, stringify } from 'yaml';
import { ApiError } from '../core/client.js';
import { CliError, EXIT } from '../core/exit-codes.js';
import { collectionPath, itemPath, nounOf, resolveKind } from '../core/kinds.js';
import { type Invocation, type Runtime, invocation } from '../core/runtime.js';
import { waitFor } from '../core/wait.js';
import { deleteResource } from './resources.js';

/** One resource from a file, as much of it as apply uses. */
interface Manifest {
  def: KindDefinition;
  name: string;
  project: string | undefined;
  labels: Record<string, string>;
  spec: Record<string, unknown>;
}

/** Reads YAML or JSON (one or many documents, or lists) from a file or "-" (stdin). */
export async function readManifests(
  runtime: Runtime,
  file: string,
  defaultProject: string | undefined,
): Promise<Manifest[]> {
  const text =
    file === '-'
      ? await readStream(runtime.stdin)
      : await readFile(file, 'utf8').catch((err: Error) => {
          throw new CliError(`Cannot read ${file}: ${err.message}`, EXIT.usage);
        });
  const docs: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new CliError(`${file}: ${doc.errors[0]!.message}`, EXIT.usage);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) docs.push(...value);
    else if ((value as { items?: unknown }).items && Array.isArray((value as { items: unknown[] }).items))
      docs.push(...(value as { items: unknown[] }).items);
    else docs.push(value);
  }
  return docs.map((doc, i) => {
    const d = doc as {
      kind?: string;
      metadata?: { name?: string; project?: string; labels?: Record<string, string> };
      spec?: Record<string, unknown>;
    };
    if (!d.kind || !d.metadata?.name)
      throw new CliError(`${file}: document ${i + 1} needs kind and metadata.name.`, EXIT.usage);
    const def = resolveKind(d.kind);
    return {
      def,
      name: d.metadata.name,
      project: def.scope === 'project' ? (d.metadata.project ?? defaultProject) : undefined,
      labels: d.metadata.labels ?? {},
      spec: d.spec ?? {},
    };
  });
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

async function current(inv: Invocation, m: Manifest): Promise<Resource | undefined> {
  try {
    return await inv.client.request<Resource>('GET', itemPath(m.def, m.project, m.name));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * The part apply owns, normalised with the kind's defaults so that a round trip compares equal;
 * what the platform recorded where the file says nothing (a Database's placed target) is live's.
 */
function desired(
  m: Manifest,
  existing?: Resource,
): { labels: Record<string, string>; spec: Record<string, unknown> } {
  const parsed = m.def.spec.safeParse(m.spec);
  const spec = { ...(parsed.success ? (parsed.data as Record<string, unknown>) : m.spec) };
  for (const field of m.def.recorded ?? [])
    if (spec[field] === undefined && existing?.spec[field] !== undefined) spec[field] = existing.spec[field];
  return { labels: m.labels, spec };
}

function label(m: Manifest): string {
  return `${nounOf(m.def.kind)}/${m.name}`;
}

/** Creates what is missing and updates what differs (with If-Match: no lost updates). Returns the lines printed. */
export async function apply(runtime: Runtime, inv: Invocation, manifests: Manifest[]): Promise<void> {
  for (const m of manifests) {
    const existing = await current(inv, m);
    const want = desired(m, existing);
    let written: Resource | undefined;
    if (!existing) {
      written = await inv.client.request<Resource>('POST', collectionPath(m.def, m.project), {
        body: { kind: m.def.kind, metadata: { name: m.name, labels: m.labels }, spec: m.spec },
      });
      runtime.stdout.write(`${label(m)} created\n`);
    } else if (
      isDeepStrictEqual(existing.spec, want.spec) &&
      isDeepStrictEqual(existing.metadata.labels, want.labels)
    ) {
      runtime.stdout.write(`${label(m)} unchanged\n`);
    } else {
      written = await inv.client.request<Resource>('PUT', itemPath(m.def, m.project, m.name), {
        body: { kind: m.def.kind, metadata: { name: m.name, labels: m.labels }, spec: m.spec },
        headers: { 'if-match': existing.metadata.resourceVersion },
      });
      runtime.stdout.write(`${label(m)} configured\n`);
    }
    if (written && inv.wait)
      await waitFor(inv.client, collectionPath(m.def, m.project), written, {
        timeoutMs: inv.timeoutMs,
        progress: runtime.stderr,
      });
  }
}

/** Objects with their keys sorted, so that the store's key order never shows up as a change. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}

/** Prints what apply would change; returns whether anything would. */
export async function diff(runtime: Runtime, inv: Invocation, manifests: Manifest[]): Promise<boolean> {
  let changed = false;
  for (const m of manifests) {
    const existing = await current(inv, m);
    const want = stringify(canonical(desired(m, existing)));
    const have = existing
      ? stringify(canonical({ labels: existing.metadata.labels, spec: existing.spec }))
      : '';
    if (want === have) continue;
    changed = true;
    runtime.stdout.write(
      createTwoFilesPatch(
        `${label(m)} (live)`,
        `${label(m)} (file)`,
        have,
        want,
        existing ? undefined : 'does not exist',
        undefined,
        { context: 3 },
      ),
    );
  }
  return changed;
}

export function registerDeclarativeCommands(program: Command, runtime: Runtime): void {
  program
    .command('apply')
    .description(
      'Create or update the resources in a YAML/JSON file so that they match it. Prints created, configured or unchanged for each.',
    )
    .requiredOption('-f, --filename <file>', 'the file, or - for stdin')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo apply -f shop.yaml --wait\n  kumo get db orders -o yaml | kumo apply -f -',
    )
    .action(async (o: { filename: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      await apply(runtime, inv, await readManifests(runtime, o.filename, inv.project));
    });

  program
    .command('diff')
    .description(
      'Show what `kumo apply` would change. Exits 1 when there are changes, 0 when there are none.',
    )
    .requiredOption('-f, --filename <file>', 'the file, or - for stdin')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo diff -f shop.yaml\n  kumo diff -f shop.yaml || echo "changes pending"',
    )
    .action(async (o: { filename: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      if (await diff(runtime, inv, await readManifests(runtime, o.filename, inv.project)))
        process.exitCode = EXIT.failure;
    });

  program
    .command('delete')
    .description('Delete a resource by kind and name, or every resource in a file (in reverse order).')
    .argument('[kind]')
    .argument('[name]')
    .option('-f, --filename <file>', 'delete the resources in this file, or - for stdin')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo delete db orders --project shop --yes\n  kumo delete -f shop.yaml',
    )
    .action(
      async (
        kind: string | undefined,
        name: string | undefined,
        o: { filename?: string; yes?: boolean },
        cmd: Command,
      ) => {
        const inv = await invocation(runtime, cmd);
        if (o.filename) {
          for (const m of (await readManifests(runtime, o.filename, inv.project)).reverse()) {
            try {
              await inv.client.request('DELETE', itemPath(m.def, m.project, m.name));
              runtime.stdout.write(`${label(m)} deleted\n`);
            } catch (err) {
              if (err instanceof ApiError && err.status === 404)
                runtime.stdout.write(`${label(m)} not found\n`);
              else throw err;
            }
          }
          return;
        }
        if (!kind || !name)
          throw new CliError(
            'Say what to delete: `kumo delete KIND NAME` or `kumo delete -f FILE`.',
            EXIT.usage,
          );
        await deleteResource(runtime, inv, resolveKind(kind), name, o.yes ?? false);
      },
    );
}
