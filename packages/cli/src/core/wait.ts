import type { Condition, Resource } from '@kumo/api';
import type { KumoClient } from './client.js';
import { CliError, EXIT } from './exit-codes.js';
import { nounOf } from './kinds.js';
import { notReadyReason } from './output.js';

export interface WaitOptions {
  /** Give up after this long (exit 8). */
  timeoutMs: number;
  /** Where progress goes; a terminal gets one updating line, anything else plain lines. */
  progress: NodeJS.WritableStream & { isTTY?: boolean };
  /** Wait for the resource to be gone instead of Ready. */
  gone?: boolean;
  /** Decides instead of Ready/Error (e.g. a verification or a restore): done, failed, or not yet. */
  until?: (r: Resource) => 'done' | 'failed' | undefined;
  /** With `until`: why it failed, for the error message. */
  failure?: (r: Resource) => string;
}

/**
 * Follows the watch stream until `written` (the result of a write) is done: Ready with
 * observedGeneration == generation (a Backup: Succeeded; or, with `gone`, deleted; or what `until`
 * says). Throws CliError with exit 9 and the reason when it ends in Error or Failed, exit 8 on timeout. Misses nothing: the watch starts at the write's
 * resourceVersion.
 */
export async function waitFor(
  client: KumoClient,
  collection: string,
  written: Resource,
  options: WaitOptions,
): Promise<Resource> {
  const name = written.metadata.name;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs);
  let last = written;
  let lastLine = '';
  let outcome = options.until
    ? options.until(written)
    : done(written, options.gone)
      ? ('done' as const)
      : undefined;
  const show = (r: Resource) => {
    const reason = notReadyReason(r);
    const line = `${nounOf(r.kind)}/${name}: ${r.status.phase ?? 'Pending'}${reason ? ` — ${reason}` : ''}`;
    if (line === lastLine) return;
    lastLine = line;
    if (options.progress.isTTY) options.progress.write(`\r\x1b[K${line}`);
    else options.progress.write(line + '\n');
  };
  try {
    if (!outcome) {
      show(written);
      await client
        .watch(
          collection,
          written.metadata.resourceVersion,
          (event) => {
            if (event.object.metadata.name !== name) return false;
            last = event.object;
            if (event.type === 'DELETED') {
              outcome = options.gone ? 'done' : 'failed';
              return true;
            }
            show(event.object);
            outcome = options.until
              ? options.until(event.object)
              : settledOutcome(event.object, options.gone);
            return outcome !== undefined;
          },
          abort.signal,
        )
        .catch((err: unknown) => {
          if (!abort.signal.aborted) throw err; // our own timeout ends the watch: reported below as a timeout
        });
    }
  } finally {
    clearTimeout(timer);
    if (options.progress.isTTY && lastLine) options.progress.write('\n');
  }
  if (outcome === 'done') return last;
  if (outcome === 'failed' && options.failure) {
    throw new CliError(`${nounOf(last.kind)}/${name}: ${options.failure(last)}`, EXIT.resourceFailed);
  }
  if (outcome === 'failed') {
    const failed = (last.status.conditions as Condition[] | undefined)?.find(
      (c) => (c.type === 'Ready' || c.type === 'Succeeded') && c.status === 'False',
    );
    throw new CliError(
      `${nounOf(last.kind)}/${name} ${options.gone ? 'failed' : `ended in ${last.status.phase ?? 'Error'}`}: ${failed ? `${failed.reason}: ${failed.message}` : 'it was deleted'}`,
      EXIT.resourceFailed,
    );
  }
  throw new CliError(
    `Gave up waiting for ${nounOf(last.kind)}/${name} after ${Math.round(options.timeoutMs / 1000)}s (it is ${last.status.phase ?? 'Pending'}${notReadyReason(last) ? `: ${notReadyReason(last)}` : ''}). It may still get there: \`kumo get ${nounOf(last.kind)} ${name}\`.`,
    EXIT.timeout,
  );
}

function settledOutcome(r: Resource, gone: boolean | undefined): 'done' | 'failed' | undefined {
  if (done(r, gone)) return 'done';
  if (!gone && (r.status.phase === 'Error' || r.status.phase === 'Failed')) return 'failed';
  return undefined;
}

function done(r: Resource, gone: boolean | undefined): boolean {
  if (gone) return false;
  if (r.kind === 'Backup') return r.status.phase === 'Succeeded';
  const ready = (r.status.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');
  const settled = r.status.observedGeneration === r.metadata.generation;
  if (r.kind === 'Database' && (r.spec as { stopped?: boolean }).stopped)
    return settled && r.status.phase === 'Stopped';
  return settled && ready?.status === 'True';
}

/** Parses "90s", "5m", "300" (seconds) into milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new CliError(`"${value}" is not a duration: use e.g. 90s, 5m, 1h.`, EXIT.usage);
  const n = Number(match[1]);
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}
