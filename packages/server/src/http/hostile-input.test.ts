import { connect } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDeveloper } from '../testing/tenants.js';
import { type TestKumo, startTestKumo } from '../testing/test-kumo.js';
import { MAX_JSON_DEPTH } from './request-input.js';

// Hostile input — NUL characters, lone surrogates, deep nesting, odd methods, broken framing — gets
// a 4xx problem naming what is wrong, is refused before any store lookup (a developer's requests go
// through membership lookups that PostgreSQL would fail with a 500), and writes nothing.
let t: TestKumo;
let pool: pg.Pool;
let developer: string;
beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
  pool = new pg.Pool({ connectionString: t.databaseUrl });
  developer = await createDeveloper(t);
});
afterAll(async () => {
  await pool?.end();
  await t?.stop();
});

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: Array<{ field: string; message: string }>;
}

let sent = 0;
/** Sends a request with its own request id; answers the problem, and whether the request wrote anything. */
async function send(
  path: string,
  init: { method?: string; token?: string; type?: string; body?: string | Uint8Array; headers?: object } = {},
): Promise<{ res: Response; problem: ProblemBody; wrote: boolean }> {
  const requestId = `hostile-${++sent}`;
  const headers: Record<string, string> = {
    'x-request-id': requestId,
    authorization: `Bearer ${init.token ?? t.token}`,
    ...(init.type ? { 'content-type': init.type } : {}),
    ...init.headers,
  };
  const res = await t.kumo.app.request(path, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await res.text();
  const { rows } = await pool.query<{ n: string }>(
    'SELECT count(*) AS n FROM audit_log WHERE request_id = $1',
    [requestId],
  );
  return { res, problem: (text ? JSON.parse(text) : {}) as ProblemBody, wrote: Number(rows[0]!.n) > 0 };
}

const json = 'application/json';
const mergePatch = 'application/merge-patch+json';
/** `{"a":{"a":…1…}}`, `levels` objects deep. */
const nested = (levels: number): string => '{"a":'.repeat(levels - 1) + '{"a":1' + '}'.repeat(levels);

describe('NUL characters and lone surrogates', () => {
  const cases: Array<{
    reason: string;
    path: string;
    init?: Parameters<typeof send>[1];
    field: string;
  }> = [
    {
      reason: 'a NUL in a path parameter, which the membership lookup would send to PostgreSQL',
      path: '/v1/projects/a%00b/databases',
      field: 'path.project',
    },
    { reason: 'a NUL in an org path parameter', path: '/v1/orgs/a%00b/members', field: 'path.org' },
    { reason: 'a NUL in the org query of the audit log', path: '/v1/audit?org=a%00b', field: 'query.org' },
    {
      reason: 'a NUL in a label selector',
      path: '/v1/projects/shop/databases?labelSelector=env%3Da%00b',
      field: 'query.labelSelector',
    },
    {
      reason: 'a NUL in the name of a query parameter (named escaped)',
      path: '/v1/projects/shop/databases?a%00b=1',
      field: 'query.a\\u0000b',
    },
    {
      reason: 'a NUL in the org of a new project, which the membership lookup reads from the body',
      path: '/v1/projects',
      init: {
        method: 'POST',
        type: json,
        body: JSON.stringify({ metadata: { name: 'p1' }, spec: { org: 'ac\u0000me' } }),
      },
      field: 'spec.org',
    },
    {
      reason: 'a NUL in a JSON string value',
      path: '/v1/projects/shop/databases',
      init: {
        method: 'POST',
        type: json,
        body: JSON.stringify({
          metadata: { name: 'db1' },
          spec: { engine: 'postgres', acl: ['10.0.0.0/8\u0000'] },
        }),
      },
      field: 'spec.acl.0',
    },
    {
      reason: 'a lone surrogate escape in JSON text',
      path: '/v1/projects/shop/databases',
      init: {
        method: 'POST',
        type: json,
        body: '{"metadata":{"name":"db2","labels":{"team":"a\\ud800"}},"spec":{"engine":"postgres"}}',
      },
      field: 'metadata.labels.team',
    },
    {
      reason: 'a NUL in a label key (an object key)',
      path: '/v1/projects/shop/databases',
      init: {
        method: 'POST',
        type: json,
        body: JSON.stringify({
          metadata: { name: 'db3', labels: { 'a\u0000': 'b' } },
          spec: { engine: 'postgres' },
        }),
      },
      field: 'metadata.labels.a\\u0000',
    },
    {
      reason: 'a lone low surrogate in a parameter name',
      path: '/v1/projects/shop/databases',
      init: {
        method: 'POST',
        type: json,
        body: '{"metadata":{"name":"db4"},"spec":{"engine":"postgres","parameters":{"\\udc00x":"1"}}}',
      },
      field: 'spec.parameters.\\udc00x',
    },
    {
      reason: 'a NUL in a merge patch',
      path: '/v1/projects/shop',
      init: {
        method: 'PATCH',
        type: mergePatch,
        body: JSON.stringify({ metadata: { labels: { env: 'prod\u0000' } } }),
      },
      field: 'metadata.labels.env',
    },
    {
      reason: 'a NUL in a status patch',
      path: '/v1/projects/shop/status',
      init: { method: 'PATCH', type: mergePatch, body: JSON.stringify({ message: '\u0000' }) },
      field: 'message',
    },
  ];
  for (const c of cases) {
    for (const who of ['a developer', 'an operator'] as const) {
      it(`answers 422 naming ${c.field} for ${c.reason}, as ${who}, and writes nothing`, async () => {
        const { res, problem, wrote } = await send(c.path, {
          ...c.init,
          ...(who === 'a developer' ? { token: developer } : {}),
        });
        expect(res.status).toBe(422);
        expect(res.headers.get('content-type')).toBe('application/problem+json');
        expect(problem).toMatchObject({ type: 'https://kumo.dev/problems/validation', status: 422 });
        expect(problem.errors?.map((e) => e.field)).toEqual([c.field]);
        expect(problem.errors![0]!.message).toMatch(/NUL character|unpaired UTF-16 surrogate/);
        expect(wrote).toBe(false);
      });
    }
  }

  it('stores nothing of a refused create: the name is still free afterwards', async () => {
    const body = (displayName: string) =>
      JSON.stringify({ metadata: { name: 'nul-org' }, spec: { displayName } });
    expect((await send('/v1/orgs', { method: 'POST', type: json, body: body('a\u0000b') })).res.status).toBe(
      422,
    );
    expect((await send('/v1/orgs/nul-org')).res.status).toBe(404);
    expect((await send('/v1/orgs', { method: 'POST', type: json, body: body('ab') })).res.status).toBe(201);
  });

  it('takes characters that are fine: astral characters in pairs, accents, U+FFFD', async () => {
    const displayName = 'Café 🚀 \ufffd';
    const { res } = await send('/v1/orgs', {
      method: 'POST',
      type: json,
      body: JSON.stringify({ metadata: { name: 'unicode' }, spec: { displayName } }),
    });
    expect(res.status).toBe(201);
    const read = (await (await t.request('/v1/orgs/unicode')).json()) as { spec: { displayName: string } };
    expect(read.spec.displayName).toBe(displayName);
  });
});

describe('deeply nested bodies', () => {
  it(`answers 422 naming the limit of ${MAX_JSON_DEPTH} levels for a merge patch 4,000 levels deep`, async () => {
    const { res, problem, wrote } = await send('/v1/orgs/acme', {
      method: 'PATCH',
      type: mergePatch,
      body: `{"spec":${nested(4000)}}`,
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(problem.detail).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
    expect(problem.errors).toHaveLength(1);
    expect(problem.errors![0]!.field).toBe(
      ['spec', ...Array<string>(MAX_JSON_DEPTH - 1).fill('a')].join('.'),
    );
    expect(wrote).toBe(false);
  });

  it('answers 422 for arrays nested far deeper than the limit, in a create', async () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    const body = `{"metadata":{"name":"deep"},"spec":{"engine":"postgres","acl":${deep}}}`;
    const { res, problem } = await send('/v1/projects/shop/databases', { method: 'POST', type: json, body });
    expect(res.status).toBe(422);
    expect(problem.errors![0]!.message).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
  });

  it(`refuses a body at ${MAX_JSON_DEPTH + 1} levels for its depth, one at ${MAX_JSON_DEPTH} levels for what it says`, async () => {
    // The body is level 1, "spec" level 2: spec holds MAX_JSON_DEPTH - 1 (or more) levels.
    const at = async (levels: number) =>
      (
        await send('/v1/orgs/acme', {
          method: 'PATCH',
          type: mergePatch,
          body: `{"spec":${nested(levels - 1)}}`,
        })
      ).problem;
    expect((await at(MAX_JSON_DEPTH + 1)).errors![0]!.message).toContain('nests deeper');
    const within = await at(MAX_JSON_DEPTH);
    expect(within.status).toBe(422);
    expect(within.errors![0]).toEqual({
      field: 'spec.a',
      message: 'is not a known field; check its spelling or remove it',
    });
  });
});

describe('bodies that cannot be read', () => {
  const cases: Array<{ reason: string; init: Parameters<typeof send>[1]; status: number; type: string }> = [
    {
      reason: 'a body that is not UTF-8',
      init: {
        method: 'PATCH',
        type: mergePatch,
        body: new Uint8Array([...Buffer.from('{"spec":{"displayName":"'), 0xff, 0x22, 0x7d, 0x7d]),
      },
      status: 400,
      type: 'malformed-request',
    },
    {
      reason: 'a merge patch without a body or a Content-Type (was a 500)',
      init: { method: 'PATCH' },
      status: 400,
      type: 'malformed-request',
    },
    {
      reason: 'a body that is not JSON',
      init: { method: 'PATCH', type: mergePatch, body: '{"spec":' },
      status: 400,
      type: 'malformed-request',
    },
    {
      reason: 'a body sent as text/plain',
      init: { method: 'PATCH', type: 'text/plain', body: '{}' },
      status: 415,
      type: 'unsupported-media-type',
    },
    {
      reason: 'JSON Patch (RFC 6902), which Kumo does not take',
      init: { method: 'PATCH', type: 'application/json-patch+json', body: '[]' },
      status: 415,
      type: 'unsupported-media-type',
    },
  ];
  for (const c of cases) {
    it(`answers ${c.status} ${c.type} for ${c.reason}`, async () => {
      const { res, problem, wrote } = await send('/v1/orgs/acme', c.init);
      expect(res.status).toBe(c.status);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(problem).toMatchObject({ type: `https://kumo.dev/problems/${c.type}`, status: c.status });
      expect(wrote).toBe(false);
    });
  }
});

describe('resourceVersions a watch resumes from', () => {
  it('answers 422 for a Last-Event-ID that is not a resourceVersion (was a 500)', async () => {
    const { res, problem } = await send('/v1/orgs?watch=true', { headers: { 'last-event-id': 'abc' } });
    expect(res.status).toBe(422);
    expect(problem.errors?.map((e) => e.field)).toEqual(['header.last-event-id']);
  });

  it('answers 422 for a resourceVersion beyond any there can be (was a 500)', async () => {
    const { res, problem } = await send('/v1/orgs?watch=true&resourceVersion=99999999999999999999');
    expect(res.status).toBe(422);
    expect(problem.errors?.map((e) => e.field)).toEqual(['query.resourceVersion']);
  });
});

describe('continue tokens', () => {
  it('answers 400 for a token that decodes to names with a NUL or a lone surrogate (was a 500)', async () => {
    for (const names of [
      ['', 'a\u0000'],
      ['shop\uD800', 'x'],
    ]) {
      const token = Buffer.from(JSON.stringify(names)).toString('base64url');
      const res = await t.request(`/v1/projects/shop/databases?limit=1&continue=${token}`);
      expect(res.status, JSON.stringify(names)).toBe(400);
      expect(((await res.json()) as ProblemBody).detail).toMatch(/continue token is not valid/);
    }
  });
});

describe('methods no route takes', () => {
  const cases = [
    { reason: 'PURGE of a collection', method: 'PURGE', path: '/v1/orgs', allow: 'GET, HEAD, POST' },
    { reason: 'DELETE of a collection', method: 'DELETE', path: '/v1/orgs', allow: 'GET, HEAD, POST' },
    {
      reason: 'OPTIONS of an item',
      method: 'OPTIONS',
      path: '/v1/orgs/acme',
      allow: 'GET, HEAD, PUT, PATCH, DELETE',
    },
    {
      reason: 'an unknown method (in-process; Node refuses it itself)',
      method: 'FOO',
      path: '/livez',
      allow: 'GET, HEAD',
    },
  ];
  for (const c of cases) {
    it(`answers 405 with Allow for ${c.reason}`, async () => {
      const { res, problem } = await send(c.path, { method: c.method });
      expect(res.status).toBe(405);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.headers.get('allow')).toBe(c.allow);
      expect(problem).toMatchObject({ type: 'https://kumo.dev/problems/method-not-allowed', status: 405 });
    });
  }

  it('answers 404 for an odd method on a path no route serves', async () => {
    const { res, problem } = await send('/v1/nothing-here', { method: 'PURGE' });
    expect(res.status).toBe(404);
    expect(problem.type).toBe('https://kumo.dev/problems/not-found');
  });
});

describe('public routes ignore the Authorization header', () => {
  it('answers the probes and the OpenAPI document whatever token is sent, and still refuses it elsewhere', async () => {
    const made = await t.request('/v1/tokens', {
      method: 'POST',
      json: { name: 'soon-revoked', user: 'dev' },
    });
    const { id, token } = (await made.json()) as { id: string; token: string };
    expect((await t.request(`/v1/tokens/${id}`, { method: 'DELETE' })).status).toBe(200);
    for (const authorization of [`Bearer ${token}`, 'Bearer kumo_junk', 'Basic YTpi', 'Bearer']) {
      for (const path of ['/livez', '/readyz', '/v1/openapi.json']) {
        const res = await t.kumo.app.request(path, { headers: { authorization } });
        expect(res.status, `${path} with "${authorization}"`).toBe(200);
      }
      const refused = await t.kumo.app.request('/metrics', { headers: { authorization } });
      expect(refused.status, `/metrics with "${authorization}"`).toBe(401);
      expect((await t.kumo.app.request('/v1/orgs', { headers: { authorization } })).status).toBe(401);
    }
  });
});

/** One request as raw bytes over TCP to the listening server; what came back before it closed. */
async function rawRequest(
  bytes: Buffer | string,
): Promise<{ status: number; headers: string; body: string }> {
  const { hostname, port } = new URL(t.url);
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    let out = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (out += chunk));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer: ${out}`)));
  });
  const [head = '', body = ''] = text.split(/\r\n\r\n(.*)/s);
  return { status: Number(head.split(' ')[1] ?? 0), headers: head.toLowerCase(), body };
}

const line = (method: string, path: string, ...headers: string[]) =>
  `${method} ${path} HTTP/1.1\r\nHost: kumo\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;

describe('over a real socket', () => {
  it('answers a method Node knows but Kumo does not take (PURGE) with a 405 problem', async () => {
    const res = await rawRequest(line('PURGE', '/v1/orgs'));
    expect(res.status).toBe(405);
    expect(res.headers).toContain('content-type: application/problem+json');
    expect(res.headers).toContain('allow: get, head, post');
  });

  it('answers a body that is not UTF-8 with a 400 problem', async () => {
    const body = Buffer.concat([
      Buffer.from('{"metadata":{"name":"x"},"spec":{"displayName":"'),
      Buffer.from([0xff, 0x22, 0x7d, 0x7d]),
    ]);
    const head = line(
      'POST',
      '/v1/orgs',
      `Authorization: Bearer ${t.token}`,
      'Content-Type: application/json',
      `Content-Length: ${body.length}`,
    );
    const res = await rawRequest(Buffer.concat([Buffer.from(head), body]));
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ type: 'https://kumo.dev/problems/malformed-request' });
  });

  // What Node's HTTP parser answers by itself, before Kumo sees the request: a bare status line, no
  // problem body (docs/api.md, "Hostile input").
  const byNode = [
    { reason: 'a method Node does not know', request: line('FOO', '/v1/orgs'), status: 400 },
    { reason: 'a lower-case method', request: line('get', '/livez'), status: 400 },
    {
      reason: 'a Content-Length that is not a number',
      request: line('POST', '/v1/orgs', 'Content-Length: abc') + '{}',
      status: 400,
    },
    {
      reason: 'a negative Content-Length',
      request: line('POST', '/v1/orgs', 'Content-Length: -1'),
      status: 400,
    },
    {
      reason: 'two different Content-Lengths',
      request: line('POST', '/v1/orgs', 'Content-Length: 2', 'Content-Length: 3') + '{}',
      status: 400,
    },
    {
      reason: 'both Content-Length and Transfer-Encoding',
      request: line('POST', '/v1/orgs', 'Content-Length: 2', 'Transfer-Encoding: chunked') + '0\r\n\r\n',
      status: 400,
    },
    {
      reason: 'a Transfer-Encoding other than chunked',
      request: line('POST', '/v1/orgs', 'Transfer-Encoding: gzip') + '{}',
      status: 400,
    },
    { reason: 'a NUL byte in the path', request: line('GET', '/v1/orgs/a\u0000b'), status: 400 },
    {
      reason: 'a byte that is not ASCII in the path',
      request: line('GET', '/v1/orgs/caf\u00e9'),
      status: 400,
    },
    {
      reason: 'a NUL byte in a header value',
      request: line('GET', '/livez', 'X-Note: a\u0000b'),
      status: 400,
    },
    {
      reason: 'headers over 16 KiB',
      request: line('GET', '/livez', `X-Big: ${'a'.repeat(17 * 1024)}`),
      status: 431,
    },
  ];
  for (const c of byNode) {
    it(`lets Node answer ${c.status} with no body for ${c.reason}`, async () => {
      const res = await rawRequest(Buffer.from(c.request, 'latin1'));
      expect(res.status).toBe(c.status);
      expect(res.body).toBe('');
      expect(res.headers).not.toContain('x-request-id'); // Kumo never saw it
    });
  }

  // What Node (no Host) and @hono/node-server, between Node and Kumo (a target it cannot make a URL
  // of), answer by themselves: 400 with an empty chunked body.
  const byAdapter = [
    { reason: 'a request target that is not a path (OPTIONS *)', request: line('OPTIONS', '*') },
    { reason: 'a backslash in the path', request: line('GET', '/v1\\orgs') },
    {
      reason: 'no Host header',
      request: 'GET /livez HTTP/1.1\r\nConnection: close\r\n\r\n',
    },
  ];
  for (const c of byAdapter) {
    it(`answers 400 with an empty body before Kumo runs, for ${c.reason}`, async () => {
      const res = await rawRequest(c.request);
      expect(res.status).toBe(400);
      expect(res.body).toBe('0\r\n\r\n');
      expect(res.headers).not.toContain('x-request-id');
    });
  }

  it('lets Node close a CONNECT without an answer', async () => {
    const res = await rawRequest('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(res).toEqual({ status: 0, headers: '', body: '' });
  });

  it('serves the next connection normally afterwards', async () => {
    const res = await rawRequest(line('GET', '/livez'));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
  });
});
