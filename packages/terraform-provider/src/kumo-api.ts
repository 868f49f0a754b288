import type { EngineInfo, Resource } from '@kumo/api';

/** A problem+json answer of the API, or a request that never got one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(detail ? `${title}: ${detail}` : title);
  }
}

/** The Kumo API as the provider uses it: JSON over HTTP with a bearer token. */
export class KumoApi {
  private engines: Promise<EngineInfo[]> | undefined;

  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.url), {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          'user-agent': 'terraform-provider-kumo',
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      throw new ApiError(0, `Kumo at ${this.url} did not answer`, (err as Error).message);
    }
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (!res.ok) {
      const fields = Array.isArray(parsed.errors)
        ? (parsed.errors as Array<{ field?: string; message?: string }>)
            .map((e) => `${e.field ?? ''} ${e.message ?? ''}`.trim())
            .join('; ')
        : '';
      const said = String(parsed.detail ?? '');
      const detail = fields && !said.includes(fields) ? [said, fields].filter(Boolean).join(' — ') : said;
      throw new ApiError(res.status, String(parsed.title ?? `HTTP ${res.status}`), detail);
    }
    return parsed as T;
  }

  /** A resource, or undefined when there is none (404). */
  async find(path: string): Promise<Resource | undefined> {
    try {
      return await this.request<Resource>('GET', path);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** The engines the platform offers (read once per run of the provider). */
  engineList(): Promise<EngineInfo[]> {
    this.engines ??= this.request<{ items: EngineInfo[] }>('GET', '/v1/engines').then((r) => r.items);
    return this.engines;
  }
}
