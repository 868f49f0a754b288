import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Resource } from '@kumo/api';
import type { Command } from 'commander';
import { parse, stringify } from 'yaml';
import { ApiError } from '../core/client.js';
import { CliError, EXIT } from '../core/exit-codes.js';
import { collectionPath, itemPath, nounOf, resolveKind } from '../core/kinds.js';
import { type Runtime, invocation } from '../core/runtime.js';
import { waitFor } from '../core/wait.js';
import { getResource } from './resources.js';

const HEADER = [
  '# Edit the labels and the spec, save and quit: Kumo applies them only if nobody changed the',
  '# resource meanwhile. Quit without a change to cancel. Status is shown read-only further down.',
  '',
].join('\n');

/** Runs the user's editor on file; resolves when it exits 0. */
function runEditor(runtime: Runtime, file: string): Promise<void> {
  const editor = runtime.env.KUMO_EDITOR || runtime.env.VISUAL || runtime.env.EDITOR || 'vi';
  return new Promise((resolve, reject) => {
    // Through the shell, as git does: EDITOR may carry arguments ("code --wait").
    const child = spawn('/bin/sh', ['-c', `${editor} "$1"`, 'editor', file], {
      stdio: 'inherit',
      env: runtime.env,
    });
    child.once('error', (err) =>
      reject(new CliError(`Cannot run the editor (${editor}): ${err.message}`, EXIT.failure)),
    );
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(
            new CliError(`The editor (${editor}) exited with ${code}; nothing was changed.`, EXIT.failure),
          ),
    );
  });
}

export function registerEditCommand(program: Command, runtime: Runtime): void {
  program
    .command('edit')
    .description(
      'Edit a resource in $EDITOR (KUMO_EDITOR, VISUAL or EDITOR; default vi) and apply it with If-Match: a change someone made meanwhile is reported, never overwritten.',
    )
    .argument('<kind>', 'a kind, as for kumo get (db for databases)')
    .argument('<name>')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo edit db orders\n  EDITOR="code --wait" kumo edit project shop --wait',
    )
    .action(async (kind: string, name: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const def = resolveKind(kind);
      const current = await getResource(inv, def, name);
      const editable = {
        kind: current.kind,
        metadata: { name, labels: current.metadata.labels },
        spec: current.spec,
      };
      const dir = await mkdtemp(join(tmpdir(), 'kumo-edit-'));
      const file = join(dir, `${nounOf(def.kind)}-${name}.yaml`);
      let keep = false;
      try {
        await writeFile(
          file,
          `${HEADER}${stringify(editable)}---\n# status (read-only)\n${stringify({ status: current.status }).replace(/^/gm, '# ')}`,
          {
            mode: 0o600,
          },
        );
        await runEditor(runtime, file);
        const text = (await readFile(file, 'utf8')).split(/^---$/m)[0]!;
        let edited: { metadata?: { name?: string; labels?: Record<string, string> }; spec?: unknown };
        try {
          edited = (parse(text) ?? {}) as typeof edited;
        } catch (err) {
          keep = true;
          throw new CliError(
            `Your edit is not valid YAML (${(err as Error).message}); it is kept in ${file}.`,
            EXIT.usage,
          );
        }
        if (edited.metadata?.name !== undefined && edited.metadata.name !== name) {
          keep = true;
          throw new CliError(`The name cannot change (${name}); your edit is kept in ${file}.`, EXIT.usage);
        }
        const labels = edited.metadata?.labels ?? {};
        if (
          isDeepStrictEqual(edited.spec, current.spec) &&
          isDeepStrictEqual(labels, current.metadata.labels)
        ) {
          runtime.stdout.write('Edit cancelled: nothing changed.\n');
          return;
        }
        let written: Resource;
        try {
          written = await inv.client.request<Resource>('PUT', itemPath(def, inv.project, name), {
            body: { kind: def.kind, metadata: { name, labels }, spec: edited.spec },
            headers: { 'if-match': current.metadata.resourceVersion },
          });
        } catch (err) {
          keep = true;
          if (err instanceof ApiError && (err.status === 409 || err.status === 412))
            throw new CliError(
              `${nounOf(def.kind)}/${name} was changed by someone else while you edited it: nothing was applied. Your edit is kept in ${file}; run \`kumo edit ${kind} ${name}\` again (or \`kumo apply -f ${file}\` to apply it over the newer version).`,
              EXIT.conflict,
            );
          if (err instanceof CliError) err.message = `${err.message}\nYour edit is kept in ${file}.`;
          throw err;
        }
        runtime.stdout.write(`${nounOf(def.kind)}/${name} edited\n`);
        if (inv.wait)
          await waitFor(inv.client, collectionPath(def, inv.project), written, {
            timeoutMs: inv.timeoutMs,
            progress: runtime.stderr,
          });
      } finally {
        if (!keep) await rm(dir, { recursive: true, force: true });
      }
    });
}
