import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Authorizer } from '../auth/authorizer.js';
import type { Principal, TokenStore } from '../auth/token-store.js';
import { ForbiddenError, NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { WriteContext } from '../store/resource-store.js';
import { type BrokerAnswer, type BrokerCaller, Broker, type BrokerDeps } from './osb-broker.js';
import { OsbError } from './osb-error.js';

export interface OsbRouteDeps extends BrokerDeps {
  tokens: TokenStore;
  authorizer: Authorizer;
  logger: Logger;
  bodyLimitBytes: number;
}

/** The API versions this broker speaks: 2.13 (context, originating identity) and later minors of 2. */
const MIN_MINOR = 13;
const REALM = 'Basic realm="Kumo service broker", Bearer';

type Env = { Variables: { caller: BrokerCaller; requestId: string } };
type Ctx = Context<Env>;

/**
 * The Open Service Broker API 2.17 (docs/osb.md), mounted at /osb: a platform registers
 * `<kumo>/osb` as the broker URL. Its own authentication (a Kumo token of one project, as the
 * password of basic auth or a bearer token), its own version check and its own error bodies
 * (`{error?, description}`), as the specification wants them; the work is the Broker's.
 */
export function createOsbApp(deps: OsbRouteDeps): Hono<Env> {
  const app = new Hono<Env>();
  const broker = new Broker(deps);

  app.onError((err, c) => {
    if (err instanceof OsbError) {
      if (err.status === 401) c.header('www-authenticate', REALM);
      return c.json(err.body(), err.status);
    }
    deps.logger.error({ err, requestId: c.get('requestId') }, 'service broker request failed');
    return c.json(
      { description: `Internal error; the Kumo log has it under request id ${c.get('requestId')}.` },
      500,
    );
  });
  app.notFound((c) => c.json({ description: `No broker route for ${c.req.method} ${c.req.path}.` }, 404));
  app.use(
    '*',
    bodyLimit({
      maxSize: deps.bodyLimitBytes,
      onError: () => {
        throw new OsbError(400, `The request body is larger than ${deps.bodyLimitBytes} bytes.`);
      },
    }),
  );
  app.use('*', async (c, next) => {
    const principal = await authenticate(c, deps.tokens);
    checkVersion(c.req.header('x-broker-api-version'));
    c.set('caller', {
      project: await projectOf(principal, deps.authorizer),
      ctx: writeContextOf(c, principal),
    });
    await next();
  });

  const answer = (c: Ctx, a: BrokerAnswer) => c.json(a.body, a.status);
  const incomplete = (c: Ctx) => c.req.query('accepts_incomplete') === 'true';
  const id = (c: Ctx, name: string) => c.req.param(name)!;
  const caller = (c: Ctx) => c.get('caller');
  /** service_id and plan_id: deprovision and unbind MUST be sent them. */
  const requireIds = (c: Ctx) => {
    for (const name of ['service_id', 'plan_id'])
      if (!c.req.query(name)) throw new OsbError(400, `The query parameter ${name} is required.`);
  };
  const instance = '/v2/service_instances/:instance_id';
  const binding = `${instance}/service_bindings/:binding_id`;

  app.get('/v2/catalog', async (c) => c.json(await broker.catalog()));
  app.put(instance, async (c) =>
    answer(c, await broker.provision(caller(c), id(c, 'instance_id'), await bodyOf(c), incomplete(c))),
  );
  app.get(instance, async (c) => c.json(await broker.fetchInstance(caller(c), id(c, 'instance_id'))));
  app.patch(instance, async (c) =>
    answer(c, await broker.update(caller(c), id(c, 'instance_id'), await bodyOf(c), incomplete(c))),
  );
  app.delete(instance, async (c) => {
    requireIds(c);
    return answer(c, await broker.deprovision(caller(c), id(c, 'instance_id'), incomplete(c)));
  });
  app.get(`${instance}/last_operation`, async (c) =>
    answer(c, await broker.lastOperation(caller(c), id(c, 'instance_id'))),
  );
  // Bindings carry credentials: never kept by a cache on the way.
  app.put(binding, async (c) => {
    c.header('cache-control', 'no-store');
    return answer(
      c,
      await broker.bind(caller(c), id(c, 'instance_id'), id(c, 'binding_id'), await bodyOf(c), incomplete(c)),
    );
  });
  app.get(binding, async (c) => {
    c.header('cache-control', 'no-store');
    return c.json(await broker.fetchBinding(caller(c), id(c, 'instance_id'), id(c, 'binding_id')));
  });
  app.delete(binding, async (c) => {
    requireIds(c);
    return answer(
      c,
      await broker.unbind(caller(c), id(c, 'instance_id'), id(c, 'binding_id'), incomplete(c)),
    );
  });
  app.get(`${binding}/last_operation`, async (c) =>
    answer(c, await broker.bindingLastOperation(caller(c), id(c, 'instance_id'), id(c, 'binding_id'))),
  );
  return app;
}

/** The token of a bearer header, or the password of a basic one; 401 when it names no valid token. */
async function authenticate(c: Ctx, tokens: TokenStore): Promise<Principal> {
  const header = c.req.header('authorization') ?? '';
  const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  const basic = /^Basic\s+(\S+)$/i.exec(header)?.[1];
  const decoded = basic ? Buffer.from(basic, 'base64').toString('utf8') : undefined;
  const secret = bearer ?? (decoded?.includes(':') ? decoded.slice(decoded.indexOf(':') + 1) : undefined);
  const principal = secret ? await tokens.authenticate(secret) : undefined;
  if (!principal)
    throw new OsbError(
      401,
      'Authenticate with the broker credential: a Kumo token of one project, as the password of basic auth or as a bearer token.',
    );
  return principal;
}

/** 412 unless the platform speaks a version of the API this broker does. */
function checkVersion(header: string | undefined): void {
  const version = /^(\d+)\.(\d+)$/.exec(header?.trim() ?? '');
  if (!version || Number(version[1]) !== 2 || Number(version[2]) < MIN_MINOR)
    throw new OsbError(
      412,
      `This broker speaks the Open Service Broker API 2.${MIN_MINOR} to 2.17 (and later 2.x); send X-Broker-API-Version${header ? `, not "${header}"` : ''}.`,
    );
}

/** The one project the credential is narrowed to, where it may write resources and read credentials. */
async function projectOf(principal: Principal, authorizer: Authorizer): Promise<string> {
  const project = principal.kind === 'service' || principal.kind === 'user' ? principal.projects : null;
  if (project?.length !== 1)
    throw new OsbError(
      403,
      'The broker credential must be a token narrowed to one project, e.g. `kumo token create osb --service --org ORG --role developer --projects PROJECT`.',
    );
  try {
    await authorizer.check(principal, 'resources.write', { project: project[0]! });
    await authorizer.check(principal, 'credentials.read', { project: project[0]! });
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof ForbiddenError) throw new OsbError(403, err.message);
    throw err;
  }
  return project[0]!;
}

/** Who asks, for the audit log: the credential, and the platform's user when it says (X-Broker-API-Originating-Identity). */
function writeContextOf(c: Ctx, principal: Principal): WriteContext {
  const header = c.req.header('x-broker-api-originating-identity');
  let identity: string | undefined;
  if (header) {
    const [platform, value, extra] = header.trim().split(/\s+/);
    let parsed: unknown;
    try {
      parsed = value && !extra ? JSON.parse(Buffer.from(value, 'base64').toString('utf8')) : undefined;
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new OsbError(
        400,
        'X-Broker-API-Originating-Identity must be "<platform> <base64 of a JSON object>".',
      );
    identity = `${platform} ${JSON.stringify(parsed)}`.slice(0, 300);
  }
  const peer = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket
    ?.remoteAddress;
  const source = [peer, identity && `originating identity: ${identity}`].filter(Boolean).join(' ');
  return {
    actor: principal.id,
    tokenId: principal.tokenId,
    requestId: c.get('requestId'),
    ...(source ? { source } : {}),
  };
}

/** The request body: a JSON object (400 otherwise), with no text Kumo could not store. */
async function bodyOf(c: Ctx): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  let body: unknown;
  try {
    body = JSON.parse(text, (_key, value: unknown) => {
      if (typeof value === 'string' && (value.includes('\u0000') || /\p{Cs}/u.test(value)))
        throw new OsbError(
          400,
          'The body holds a NUL character or a lone surrogate, which Kumo cannot store.',
        );
      return value;
    });
  } catch (err) {
    if (err instanceof OsbError) throw err;
    throw new OsbError(400, 'The body must be a JSON object.');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new OsbError(400, 'The body must be a JSON object.');
  return body as Record<string, unknown>;
}
