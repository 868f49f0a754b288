import { PROBLEM_TYPES, type Problem, type Resource } from '@kumo/api';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { createParser } from 'eventsource-parser';
import { CliError, EXIT } from './exit-codes.js';
import type { Context } from './config.js';

/** A problem+json answer from the API. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(renderProblem(problem), exitCodeFor(status, problem.type));
  }
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'ERROR';
  object: Resource;
}

/**
 * The typed client of the public HTTP API — the only way the CLI reaches Kumo. Throws ApiError
 * for problem answers and CliError (exit 7) when the server cannot be reached.
 */
export class KumoClient {
  constructor(private readonly context: Context) {}

  /** The API this client talks to. */
  get baseUrl(): string {
    return this.context.url;
  }

  get url(): string {
    return this.context.url;
  }

  async request<T = unknown>(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string>; contentType?: string } = {},
  ): Promise<T> {
    const res = await this.fetch(method, path, options);
    const text = await res.text();
    const body = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok)
      throw new ApiError(
        res.status,
        (body as Problem) ?? {
          type: 'about:blank',
          title: res.statusText,
          status: res.status,
          detail: res.statusText,
        },
      );
    return body as T;
  }

  async text(path: string): Promise<string> {
    const res = await this.fetch('GET', path, {});
    if (!res.ok) throw new ApiError(res.status, (await res.json()) as Problem);
    return res.text();
  }

  /** A successful response whose body the caller streams (downloads); problems are thrown as ApiError. */
  async raw(method: string, path: string): Promise<Response> {
    const res = await this.fetch(method, path, {});
    if (!res.ok) throw new ApiError(res.status, (await res.json()) as Problem);
    return res;
  }

  /** Streams a response body line by line until it ends or signal aborts. */
  async lines(path: string, onLine: (line: string) => void, signal?: AbortSignal): Promise<void> {
    const res = await this.fetch('GET', path, {}, signal);
    if (!res.ok) throw new ApiError(res.status, (await res.json()) as Problem);
    let partial = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        const parts = (partial + decoder.decode(chunk, { stream: true })).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) onLine(line);
      }
    } catch (err) {
      if (!signal?.aborted) throw err;
    }
  }

  /**
   * Follows a collection's watch stream from resourceVersion; resolves when onEvent returns true,
   * when the server ends the stream, or when the connection is cut.
   */
  async watch(
    collection: string,
    resourceVersion: string,
    onEvent: (e: WatchEvent) => boolean | void,
    signal?: AbortSignal,
    query: Record<string, string> = {},
  ): Promise<void> {
    const params = new URLSearchParams({ ...query, watch: 'true', resourceVersion });
    const res = await this.fetch(
      'GET',
      `${collection}?${params}`,
      { headers: { accept: 'text/event-stream' } },
      signal,
    );
    if (!res.ok) throw new ApiError(res.status, (await res.json()) as Problem);
    const done = new AbortController();
    const parser = createParser({
      onEvent: (e) => {
        if (done.signal.aborted) return;
        if (onEvent({ type: e.event as WatchEvent['type'], object: JSON.parse(e.data) as Resource }) === true)
          done.abort();
      },
    });
    const decoder = new TextDecoder();
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    try {
      while (!done.signal.aborted) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // The stream was cut (the server stopped or restarted, or signal aborted): it ended here.
      // The caller resumes from the last resourceVersion it saw, and a server that is really gone
      // fails that request as unreachable.
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  private async fetch(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string>; contentType?: string },
    signal?: AbortSignal,
  ): Promise<Response> {
    try {
      return await send(this.context.url + path, {
        method,
        headers: {
          authorization: `Bearer ${this.context.token}`,
          ...(options.body === undefined
            ? {}
            : { 'content-type': options.contentType ?? 'application/json' }),
          ...options.headers,
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const cause = err as { code?: string; message?: string };
      throw new CliError(
        `Cannot reach Kumo at ${this.context.url} (${cause.code ?? cause.message}). Is it running? Check the URL with \`kumo context list\`.`,
        EXIT.unreachable,
      );
    }
  }
}

/**
 * One HTTP request with node:http(s), answered as a fetch Response. Not the global fetch: its
 * WebAssembly HTTP parser keeps the process from exiting for ~80 ms after every command.
 */
function send(
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal },
): Promise<Response> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: init.method, headers: init.headers, ...(init.signal ? { signal: init.signal } : {}) },
      (res) => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value])
            headers.append(name, one);
        }
        const status = res.statusCode ?? 502;
        const empty = status === 204 || status === 304 || init.method === 'HEAD';
        if (empty) res.resume();
        resolve(
          new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
            status,
            statusText: res.statusMessage ?? '',
            headers,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

export function exitCodeFor(status: number, type?: string): number {
  if (type === PROBLEM_TYPES.quotaExceeded) return EXIT.quotaExceeded;
  if (status === 404) return EXIT.notFound;
  if (status === 409 || status === 412) return EXIT.conflict;
  if (status === 422 || status === 400 || status === 413 || status === 415) return EXIT.invalid;
  if (status === 401 || status === 403) return EXIT.auth;
  return EXIT.failure;
}

/** A problem as a person reads it: what happened, each field with its message, and the request id. */
export function renderProblem(problem: Problem): string {
  const lines = [`${problem.title} (${problem.status}): ${problem.detail}`];
  for (const e of problem.errors ?? []) lines.push(`  ${e.field || '(body)'}: ${e.message}`);
  if (problem.quota) {
    const q = problem.quota;
    lines.push(
      `  quota: ${q.scope} ${q.name} ${q.quota}: limit ${q.limit}, used ${q.used}, ${q.remaining} left`,
    );
  }
  if (problem.status === 401) lines.push('  hint: log in again with `kumo login --url URL --token TOKEN`');
  if (problem.status === 412) lines.push('  hint: read it again (`kumo get …`) and retry your change');
  if (problem.requestId) lines.push(`  request id: ${problem.requestId}`);
  return lines.join('\n');
}
