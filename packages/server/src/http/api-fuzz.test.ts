import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDeveloper } from '../testing/tenants.js';
import { type TestKumo, startTestKumo } from '../testing/test-kumo.js';

// Property-based fuzzing of every operation in the OpenAPI document: random and malformed path
// parameters, queries, bodies, content types and tokens (an operator's, a customer's, junk, none),
// with hostile text throughout (NUL characters and lone surrogates in paths, queries, JSON values
// and keys), bodies nested thousands of levels deep, and methods no route takes. Whatever comes in,
// the API answers with a problem (application/problem+json with type, title and status), never a
// 5xx, and a rejected request writes nothing (no audit row carries its id; every write records one
// in the same transaction). Public routes never answer 401, whatever Authorization says.
let t: TestKumo;
let pool: pg.Pool;
/** A developer of acme: requests as a customer go through membership checks too. */
let memberToken: string;
beforeAll(async () => {
  t = await startTestKumo(inject('pg'));
  pool = new pg.Pool({ connectionString: t.databaseUrl });
  memberToken = await createDeveloper(t);
});
afterAll(async () => {
  await pool?.end();
  await t?.stop();
});

const RUNS_PER_OPERATION = 100;

/** Whether a route of template `route` serves the paths of template `path` ({x} is any one segment). */
function covers(route: string, path: string): boolean {
  const a = route.split('/');
  const b = path.split('/');
  return a.length === b.length && a.every((segment, i) => segment === b[i] || /^\{\w+\}$/.test(segment));
}

/** Whether a request wrote anything: every write records an audit row with the request's id. */
async function wrote(requestId: string): Promise<boolean> {
  const { rows } = await pool.query<{ n: string }>(
    'SELECT count(*) AS n FROM audit_log WHERE request_id = $1',
    [requestId],
  );
  return Number(rows[0]!.n) > 0;
}

/** Characters PostgreSQL cannot store (NUL) or that are not Unicode (lone surrogates). */
const hostileChar = fc.constantFrom('\u0000', '\ud800', '\udbff', '\udc00', '\udfff');
/** Any code point, and now and then a hostile one. */
const char = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: hostileChar },
);
const text = fc.string({ unit: char, maxLength: 20 });

const names = fc.oneof(
  fc.constantFrom(
    'acme',
    'shop',
    'orders',
    'dev',
    'nope',
    'a',
    'Bad_Name',
    '..',
    '%2e%2e',
    'x'.repeat(70),
    '',
    'a\u0000b',
    '\u0000',
    'ac\ud800me',
    '\udc00',
  ),
  fc.string({ maxLength: 30 }),
  text,
);
const labels = fc.dictionary(text, text, { maxKeys: 3 });
const json = fc.oneof(
  fc.jsonValue({ stringUnit: char, maxDepth: 4 }),
  fc.record(
    {
      metadata: fc.record({ name: names, labels }, { requiredKeys: [] }),
      spec: fc.jsonValue({ stringUnit: char, maxDepth: 4 }),
    },
    { requiredKeys: [] },
  ),
  fc.record({
    spec: fc.record(
      {
        org: names,
        engine: fc.constantFrom('postgres', 'redis', 'oracle'),
        parameters: fc.dictionary(text, fc.jsonValue({ stringUnit: char, maxDepth: 2 })),
        acl: fc.jsonValue({ stringUnit: char, maxDepth: 2 }),
      },
      { requiredKeys: [] },
    ),
  }),
);
/** A body nested `levels` deep in objects or arrays, at the top or under spec or metadata.labels. */
const deep = fc
  .record({
    levels: fc.integer({ min: 1, max: 5000 }),
    array: fc.boolean(),
    under: fc.constantFrom('', 'spec', 'metadata.labels'),
  })
  .map(({ levels, array, under }) => {
    const inner = array
      ? '['.repeat(levels) + ']'.repeat(levels)
      : '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
    const path = under ? under.split('.') : [];
    return path.map((key) => `{"${key}":`).join('') + inner + '}'.repeat(path.length);
  });
const body = fc.oneof(
  json.map((v) => JSON.stringify(v)),
  deep,
  fc.string({ maxLength: 200 }),
  fc.constant('{"metadata":'),
  fc.constant('{"metadata":{"name":"n\\u0000"},"spec":{"displayName":"\\ud800"}}'),
  fc.constant(''),
);
const query = fc.dictionary(
  fc.oneof(
    {
      weight: 9,
      arbitrary: fc.constantFrom(
        'limit',
        'continue',
        'labelSelector',
        'resourceVersion',
        'dryRun',
        'tail',
        'since',
        'kind',
        'org',
        'bogus',
      ),
    },
    { weight: 1, arbitrary: text },
  ),
  fc.oneof(fc.string({ maxLength: 20 }), fc.integer().map(String), text),
);
/** Headers that reach the store or a comparison with what it holds (header values cannot carry NUL). */
const headers = fc.record(
  {
    'if-match': fc.stringMatching(/^[\x21-\x7e]{0,25}$/),
    'last-event-id': fc.oneof(
      fc.stringMatching(/^[\x21-\x7e]{0,25}$/),
      fc.bigInt({ min: 0n, max: 10n ** 25n }).map(String),
    ),
    'idempotency-key': fc.stringMatching(/^[\x21-\x7e]{0,300}$/),
  },
  { requiredKeys: [] },
);
const token = fc.constantFrom<'admin' | 'member' | 'none' | 'junk'>(
  'admin',
  'admin',
  'member',
  'member',
  'none',
  'junk',
);
const contentType = fc.constantFrom(
  'application/json',
  'application/merge-patch+json',
  'text/plain',
  undefined,
);

/**
 * Percent-encodes like encodeURIComponent; a lone surrogate, which has no UTF-8 form (and makes
 * encodeURIComponent throw), as the bytes of its WTF-8 form, as a careless client would send it.
 */
function percentEncode(value: string): string {
  return value
    .split(/(\p{Cs})/u)
    .map((part, i) => {
      if (i % 2 === 0) return encodeURIComponent(part);
      const c = part.charCodeAt(0);
      return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    })
    .join('');
}

interface Operation {
  path: string;
  method: string;
  public: boolean;
}

let operations: Operation[];
beforeAll(async () => {
  const doc = (await (await t.kumo.app.request('/v1/openapi.json')).json()) as {
    paths: Record<string, Record<string, unknown>>;
  };
  const publicRoutes = new Set(
    t.kumo.routeTable.filter((r) => 'public' in r.access).map((r) => `${r.method} ${r.path}`),
  );
  operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => ({
      path,
      method: method.toUpperCase(),
      public: publicRoutes.has(`${method.toUpperCase()} ${path}`),
    })),
  );
});

/** The request's path with its parameters filled in, and its query. */
function url(template: string, params: string[], q: Record<string, string>): string {
  let i = 0;
  const path = template.replace(/\{[^}]+\}/g, () => percentEncode(params[i++]!));
  delete q.watch; // streams stay open by design; the watch has its own tests
  const search = Object.entries(q)
    .map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`)
    .join('&');
  return search ? `${path}?${search}` : path;
}

/** What every answer must be: below 500, and a whole problem when it is an error. */
async function checkAnswer(res: Response, label: string, failures: string[]): Promise<void> {
  const text = await res.text();
  if (res.status >= 500) failures.push(`${label} → ${res.status}: ${text.slice(0, 200)}`);
  if (res.status >= 400) {
    expect(res.headers.get('content-type'), label).toBe('application/problem+json');
    const problem = JSON.parse(text) as { type: unknown; title: unknown; status: unknown };
    expect(problem, label).toMatchObject({
      type: expect.any(String),
      title: expect.any(String),
      status: res.status,
    });
  }
}

describe('API fuzzing from the OpenAPI document', () => {
  it('never answers 5xx, always answers problem+json on errors, and rejected requests change nothing', async () => {
    expect(operations.length).toBeGreaterThan(40);
    let requests = 0;
    const failures: string[] = [];
    for (const op of operations) {
      await fc.assert(
        fc.asyncProperty(
          fc.array(names, { minLength: 3, maxLength: 3 }),
          query,
          body,
          token,
          contentType,
          headers,
          async (params, q, payload, who, type, extra) => {
            const target = url(op.path, params, q);
            const requestId = `fuzz-${requests}`;
            const sent: Record<string, string> = { ...extra, 'x-request-id': requestId };
            const secret = { admin: t.token, member: memberToken, junk: 'kumo_junk' }[who as 'admin'];
            if (who !== 'none') sent.authorization = `Bearer ${secret}`;
            if (type && op.method !== 'GET' && op.method !== 'DELETE') sent['content-type'] = type;
            const res = await t.kumo.app.request(target, {
              method: op.method,
              headers: sent,
              ...(op.method === 'GET' || op.method === 'DELETE' ? {} : { body: payload }),
            });
            requests++;
            const label = `${op.method} ${target} as ${who}`;
            await checkAnswer(res, label, failures);
            if (op.public) expect(res.status, label).not.toBe(401);
            if (res.status >= 400) expect(await wrote(requestId), label).toBe(false);
            return res.status < 500;
          },
        ),
        { numRuns: RUNS_PER_OPERATION, seed: 20261122 },
      );
    }
    console.log(
      `API fuzzing: ${requests} requests over ${operations.length} operations, ${failures.length} server errors`,
    );
    expect(failures).toEqual([]);
  });

  it('answers methods no route takes with a 405 problem (or 404 off any route), and writes nothing', async () => {
    const paths = [...new Set(operations.map((op) => op.path))];
    // Methods Node's parser passes on (it refuses unknown ones itself), an unknown one as an
    // in-process client can send it, and the usual ones where a path lacks them.
    const method = fc.constantFrom(
      'PURGE',
      'SEARCH',
      'OPTIONS',
      'LINK',
      'UNLINK',
      'PROPFIND',
      'MKCOL',
      'COPY',
      'MOVE',
      'LOCK',
      'REPORT',
      'MERGE',
      'NOTIFY',
      'SUBSCRIBE',
      'FOO',
      'GET',
      'POST',
      'PUT',
      'PATCH',
      'DELETE',
    );
    const failures: string[] = [];
    let requests = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.array(names, { minLength: 3, maxLength: 3 }),
        method,
        token,
        body,
        async (template, params, m, who, payload) => {
          const target = url(template, params, {});
          const requestId = `fuzz-method-${requests++}`;
          const sent: Record<string, string> = {
            'x-request-id': requestId,
            'content-type': 'application/json',
          };
          const secret = { admin: t.token, member: memberToken, junk: 'kumo_junk' }[who as 'admin'];
          if (who !== 'none') sent.authorization = `Bearer ${secret}`;
          const res = await t.kumo.app.request(target, {
            method: m,
            headers: sent,
            ...(m === 'GET' ? {} : { body: payload }),
          });
          const label = `${m} ${target} as ${who}`;
          // Taken also by a route whose template matches this path (GET …/invoices/{number} takes
          // GET …/invoices/close, where only POST is declared).
          const taken = operations.some((op) => op.method === m && covers(op.path, template));
          await checkAnswer(res, label, failures);
          if (!taken && res.status !== 401) {
            expect([404, 405], label).toContain(res.status);
            if (res.status === 405) expect(res.headers.get('allow'), label).toMatch(/^[A-Z, ]+$/);
          }
          if (res.status >= 400) expect(await wrote(requestId), label).toBe(false);
          return res.status < 500;
        },
      ),
      { numRuns: 1500, seed: 20261122 },
    );
    expect(failures).toEqual([]);
  });
});
