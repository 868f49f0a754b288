import type { EngineInfo, Problem, Resource } from '@kumo/api';
// The digest module alone: the package's index would bring its schemas (zod) into the bundle.
import { sha256OfReprDigest } from '@kumo/api/digest';
import { createParser } from 'eventsource-parser';

const TOKEN_KEY = 'kumo.token';

/** The token lives in sessionStorage only: it is gone when the tab closes, and never in localStorage. */
export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token: string) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** A problem+json answer, with the field errors to show next to their fields. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail);
  }
  fieldError(field: string): string | undefined {
    return this.problem.errors?.find((e) => e.field === field || e.field.startsWith(`${field}.`))?.message;
  }
}

/** What to tell the user about a failed call. */
export function problemText(err: unknown): string {
  return err instanceof ApiError ? err.problem.detail : String(err);
}

async function call(
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<Response> {
  // Kumo out of reach is a problem like any other: every caller shows it the same way.
  const res = await fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${session.token ?? ''}`,
      ...(body === undefined ? {} : { 'content-type': contentType }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }).catch((err: unknown) => {
    throw new ApiError(0, {
      type: 'about:blank',
      title: 'Unreachable',
      status: 0,
      detail: `Kumo could not be reached (${(err as Error).message}). Check the connection and try again.`,
    });
  });
  if (!res.ok) {
    const problem = (await res
      .json()
      .catch(() => ({ title: res.statusText, status: res.status, detail: res.statusText }))) as Problem;
    if (res.status === 401) window.dispatchEvent(new Event('kumo:unauthenticated'));
    throw new ApiError(res.status, problem);
  }
  return res;
}

export const api = {
  async get<T>(path: string): Promise<T> {
    return (await call('GET', path)).json() as Promise<T>;
  },
  async post<T>(path: string, body?: unknown): Promise<T> {
    return (await call('POST', path, body)).json() as Promise<T>;
  },
  async put<T>(path: string, body: unknown): Promise<T> {
    return (await call('PUT', path, body)).json() as Promise<T>;
  },
  async patch<T>(path: string, body: unknown): Promise<T> {
    return (await call('PATCH', path, body, 'application/merge-patch+json')).json() as Promise<T>;
  },
  async delete(path: string): Promise<void> {
    await call('DELETE', path);
  },
  /** A file: its bytes, the name the server suggests, and the SHA-256 (hex) it recorded (Repr-Digest). */
  async download(path: string): Promise<{ blob: Blob; filename: string; sha256?: string }> {
    const res = await call('GET', path);
    const disposition = res.headers.get('content-disposition') ?? '';
    const sha256 = sha256OfReprDigest(res.headers.get('repr-digest'));
    return {
      blob: await res.blob(),
      filename: /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'download',
      ...(sha256 ? { sha256 } : {}),
    };
  },
};

/** Hands a downloaded file to the browser to save under the name the server suggested. */
export function saveFile(file: { blob: Blob; filename: string }): void {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(file.blob);
  link.download = file.filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

export interface WhoAmI {
  principal: string;
  kind: 'operator' | 'user' | 'service';
  role: string;
  grants: Array<{ org: string; role: string; projects: string[] | null; permissions: string[] }>;
}

export type { EngineInfo, Resource };

/**
 * Follows a collection's watch stream: onEvent for each ADDED, MODIFIED or DELETED object, from the
 * current state on. Reconnects after a dropped connection, resuming where it stopped. Returns a stop function.
 */
export function watchCollection(
  path: string,
  onEvent: (type: string, object: Resource) => void,
  onError: (message: string) => void,
): () => void {
  const abort = new AbortController();
  let resume: string | undefined;
  const run = async () => {
    while (!abort.signal.aborted) {
      try {
        const url = `${path}?watch=true${resume ? `&resourceVersion=${resume}` : ''}`;
        const res = await fetch(url, {
          headers: { authorization: `Bearer ${session.token ?? ''}`, accept: 'text/event-stream' },
          signal: abort.signal,
        });
        if (!res.ok) {
          const problem = (await res.json()) as Problem;
          if (res.status === 401) window.dispatchEvent(new Event('kumo:unauthenticated'));
          onError(problem.detail);
          if (res.status === 410) resume = undefined;
          else return;
        }
        const parser = createParser({
          onEvent: (e) => {
            if (e.event === 'ERROR') {
              onError((JSON.parse(e.data) as Problem).detail);
              return;
            }
            if (e.id) resume = e.id;
            onEvent(e.event ?? 'message', JSON.parse(e.data) as Resource);
          },
        });
        const reader = res.body!.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } catch {
        if (abort.signal.aborted) return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  void run();
  return () => abort.abort();
}

/** The Ready condition's reason and message when a resource is not Ready. */
export function notReady(r: Resource): string {
  const conditions = (r.status.conditions ?? []) as Array<{
    type: string;
    status: string;
    reason: string;
    message: string;
  }>;
  const ready = conditions.find((c) => c.type === 'Ready' || c.type === 'Succeeded');
  return ready && ready.status !== 'True'
    ? `${ready.reason}${ready.message ? `: ${ready.message.split('\n')[0]}` : ''}`
    : '';
}
