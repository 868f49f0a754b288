import type { TestKumo } from '../testing/test-kumo.js';

export interface OsbCallOptions {
  /** Default: the broker credential as basic auth; null sends none. */
  authorization?: string | null;
  /** Default: "2.17"; null sends none. */
  version?: string | null;
  headers?: Record<string, string>;
  /** A body sent as is (not JSON-encoded). */
  raw?: string;
}

/**
 * A platform's side of the broker for tests: a service token of `org` narrowed to `project` (the
 * broker credential, as an operator would make it), and calls to /osb with the headers a platform
 * sends. Test-only.
 */
export async function brokerClient(t: TestKumo, org: string, project: string) {
  const made = await t.request('/v1/tokens', {
    method: 'POST',
    json: { name: `osb-${project}`, service: true, org, role: 'developer', projects: [project] },
  });
  if (made.status !== 201) throw new Error(`token: ${made.status} ${await made.text()}`);
  const token = ((await made.json()) as { token: string }).token;
  const basic = `Basic ${Buffer.from(`broker:${token}`).toString('base64')}`;

  const call = async (method: string, path: string, body?: unknown, options: OsbCallOptions = {}) => {
    const headers = new Headers(options.headers);
    if (options.authorization !== null) headers.set('authorization', options.authorization ?? basic);
    if (options.version !== null) headers.set('x-broker-api-version', options.version ?? '2.17');
    const payload = options.raw ?? (body === undefined ? undefined : JSON.stringify(body));
    if (payload !== undefined) headers.set('content-type', 'application/json');
    const res = await t.kumo.app.request(`/osb${path}`, {
      method,
      headers,
      ...(payload !== undefined ? { body: payload } : {}),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed as Record<string, unknown>, headers: res.headers };
  };

  /** The catalog ids of an engine's plan. */
  const plan = async (engine: string, name: string) => {
    const { body } = await call('GET', '/v2/catalog');
    const service = (
      body.services as Array<{ id: string; name: string; plans: Array<{ id: string; name: string }> }>
    ).find((s) => s.name === engine);
    const found = service?.plans.find((p) => p.name === name);
    if (!service || !found) throw new Error(`no ${engine} plan ${name} in the catalog`);
    return { serviceId: service.id, planId: found.id };
  };

  return { token, basic, call, plan };
}

export type BrokerClient = Awaited<ReturnType<typeof brokerClient>>;
