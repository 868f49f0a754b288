import type { KindDefinition, LabelRequirement } from '@kumo/api';
import { streamSSE } from 'hono/streaming';
import type { ChangeLog } from '../store/change-log.js';
import type { Notifier } from '../store/notifier.js';
import { type ListScope, type ResourceStore, inListScope } from '../store/resource-store.js';
import { toProblem } from './problem.js';
import type { AppContext } from './router.js';

const BATCH = 500;
const KEEPALIVE_MS = 15_000;

export interface WatchDeps {
  store: ResourceStore;
  changes: ChangeLog;
  notifier: Notifier;
  /** How often an open stream checks that its token may still read it. */
  streamRecheckMs: number;
}

/** Decides again whether the caller may still watch, and what they may see (undefined: everything). Throws when not. */
export type WatchRecheck = () => Promise<ListScope | undefined>;

/**
 * Streams changes as Server-Sent Events: `event: ADDED|MODIFIED|DELETED`, `id: <resourceVersion>`,
 * `data: <object>`. From `resourceVersion` (or Last-Event-ID) it replays everything after it, then
 * follows live; without one it first sends the current objects as ADDED. Wakes on LISTEN/NOTIFY and
 * always re-reads the change log, so a lost notification only delays, never drops, a change.
 * A resourceVersion older than the retained history answers 410 before the stream starts. `only`
 * limits the stream to what the caller may see (their orgs and projects); `recheck` runs every
 * `streamRecheckMs` and ends the stream with an ERROR event once the caller may no longer watch.
 */
export async function watch(
  c: AppContext,
  deps: WatchDeps,
  def: KindDefinition,
  project: string,
  selector: LabelRequirement[],
  from: string | undefined,
  only: ListScope | undefined,
  recheck: WatchRecheck,
): Promise<Response> {
  const filter = { kind: def.kind, project, selector };
  let initial: Array<{ type: string; id: string; data: unknown }> = [];
  let cursor: string;
  if (from === undefined) {
    const list = await deps.store.list(def.kind, {
      project,
      selector,
      limit: 100_000,
      ...(only ? { only } : {}),
    });
    initial = list.items.map((item) => ({ type: 'ADDED', id: list.resourceVersion, data: item }));
    cursor = list.resourceVersion;
  } else {
    await deps.changes.read(filter, from, 1); // throws GoneError (410) before any byte is sent
    cursor = from;
  }
  return streamSSE(c, async (stream) => {
    let dirty = true;
    let wake: (() => void) | undefined;
    const onNotify = () => {
      dirty = true;
      wake?.();
    };
    deps.notifier.on('kumo_changes', onNotify);
    stream.onAbort(() => wake?.());
    const keepalive = setInterval(() => void stream.write(': keep-alive\n\n'), KEEPALIVE_MS);
    // A revoked token, or a member removed from the org, must not keep a stream open.
    let refused: unknown;
    const rechecks = setInterval(() => {
      recheck().then(
        (scope) => (only = scope),
        (err: unknown) => {
          refused = err;
          wake?.();
        },
      );
    }, deps.streamRecheckMs);
    try {
      for (const event of initial)
        await stream.writeSSE({ event: event.type, id: event.id, data: JSON.stringify(event.data) });
      while (!stream.aborted) {
        if (refused) throw refused;
        if (!dirty) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        dirty = false;
        const batch = await deps.changes.read(filter, cursor, BATCH);
        for (const change of batch) {
          cursor = change.resourceVersion;
          if (only && !inListScope(change.object, only)) continue;
          await stream.writeSSE({
            event: change.type,
            id: change.resourceVersion,
            data: JSON.stringify(change.object),
          });
        }
        if (batch.length === BATCH) dirty = true;
      }
    } catch (err) {
      if (!stream.aborted)
        await stream.writeSSE({ event: 'ERROR', data: JSON.stringify(toProblem(err, c.get('requestId'))) });
    } finally {
      clearInterval(keepalive);
      clearInterval(rechecks);
      deps.notifier.off('kumo_changes', onNotify);
    }
  });
}
