import { randomUUID } from 'node:crypto';
import { KINDS, PROBLEM_TYPES } from '@kumo/api';
import { bodyLimit } from 'hono/body-limit';
import type pg from 'pg';
import type { Authorizer } from '../auth/authorizer.js';
import type { MembershipStore } from '../auth/membership-store.js';
import type { TokenStore } from '../auth/token-store.js';
import type { QuotaStore } from '../quotas/quota-store.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { ResourceService } from '../resources/resource-service.js';
import { HttpProblem, problemResponse, toProblem } from './problem.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerIamRoutes } from './iam-routes.js';
import { type AgentRouteDeps, registerAgentRoutes } from './agent-routes.js';
import { registerTargetRoutes } from './target-routes.js';
import { type BackupRouteDeps, registerBackupRoutes } from './backup-routes.js';
import { serveConsole } from './console-static.js';
import { RateLimiter } from './rate-limiter.js';
import { type DatabaseRouteDeps, registerDatabaseRoutes } from './database-routes.js';
import { registerDatabaseUserRoutes } from './database-user-routes.js';
import { createOsbApp } from '../osb/osb-routes.js';
import { registerResourceRoutes } from './resource-routes.js';
import { type AppContext, KumoRouter, allows } from './router.js';
import { registerSystemRoutes } from './system-routes.js';
import type { Bus } from '../bus/bus.js';
import { type BillingRouteDeps, registerBillingRoutes } from './billing-routes.js';
import type { WatchDeps } from './watch.js';
import { type WebhookRouteDeps, registerWebhookRoutes } from './webhook-routes.js';

export interface AppDeps
  extends WatchDeps, Omit<DatabaseRouteDeps, 'service' | 'pool'>, Pick<BackupRouteDeps, 'gateway'> {
  pool: pg.Pool;
  service: ResourceService;
  tokens: TokenStore;
  memberships: MembershipStore;
  quotas: QuotaStore;
  authorizer: Authorizer;
  /** The agent API (agent tokens only). */
  agents: AgentRouteDeps;
  /** Prices, usage and cost (docs/billing.md). */
  billing: BillingRouteDeps;
  /** Webhook secrets and delivery logs, and project event streams (docs/webhooks.md). */
  webhooks: WebhookRouteDeps;
  metrics: Metrics;
  /** For readiness and the bus gauge only. */
  bus: Pick<Bus, 'connected'>;
  logger: Logger;
  /** The built web console; default: packages/console/dist. */
  consoleDist?: string;
  /** Largest accepted request body. */
  bodyLimitBytes: number;
  /** Requests per second per token (or per source address without one), and the burst allowed. */
  rateLimit: { perSecond: number; burst: number };
  version: string;
}

/** The HTTP API as a Hono app (served by @hono/node-server, or called in-process by tests via app.request). */
export function createApp(deps: AppDeps): KumoRouter {
  const router = new KumoRouter(deps.authorizer);
  const { app } = router;

  app.use('*', async (c, next) => {
    const requestId = c.req.header('x-request-id')?.slice(0, 100) || randomUUID();
    c.set('requestId', requestId);
    c.set('logger', deps.logger.child({ requestId }));
    c.header('x-request-id', requestId);
    const started = performance.now();
    await next();
    const route = c.req.routePath;
    const ms = performance.now() - started;
    deps.metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    deps.metrics.httpDuration.observe({ method: c.req.method, route }, ms / 1000);
    // Never headers, query strings or bodies: they may carry tokens and passwords.
    c.get('logger').debug(
      {
        method: c.req.method,
        route,
        status: c.res.status,
        ms: Math.round(ms * 10) / 10,
        principal: c.get('principal')?.id,
      },
      'request',
    );
  });

  // The web console: static files at / (everything outside the API).
  app.use('*', serveConsole(deps.consoleDist));

  // Who is calling. Routes that are all public (the health probes, the OpenAPI document) ignore the
  // Authorization header: no store lookup, and a probe sending a stale token still sees Kumo alive.
  app.use('*', async (c, next) => {
    // The service broker authenticates its own way (basic auth too): osb/osb-routes.ts.
    if (c.req.path.startsWith('/osb/')) return next();
    const routes = router.routesAt(c.req.path);
    const onlyPublic = routes.length > 0 && routes.every((route) => 'public' in route.access);
    const header = onlyPublic ? undefined : c.req.header('authorization');
    const token = header?.match(/^Bearer\s+(\S+)$/i)?.[1];
    c.set('principal', token ? await deps.tokens.authenticate(token) : undefined);
    c.set('reauthenticate', async () => (token ? await deps.tokens.authenticate(token) : undefined));
    if (header && !c.get('principal')) {
      throw new HttpProblem(
        401,
        PROBLEM_TYPES.unauthenticated,
        'Unauthenticated',
        'The bearer token is unknown, expired or revoked. Use a valid token (the admin token is in <data-dir>/admin-token).',
      );
    }
    await next();
  });

  const limiter = new RateLimiter(deps.rateLimit.perSecond, deps.rateLimit.burst);
  // The broker's callers are limited too, by source (its credential is read only after this):
  // guessing credentials there is no cheaper than here.
  const limit = async (c: AppContext, next: () => Promise<void>) => {
    const principal = c.get('principal');
    const key = principal ? `token:${principal.tokenId}` : `source:${sourceAddress(c) ?? 'unknown'}`;
    const verdict = limiter.take(key);
    if (!verdict.ok) {
      throw new HttpProblem(
        429,
        PROBLEM_TYPES.rateLimited,
        'Too many requests',
        `Slow down: at most ${deps.rateLimit.perSecond} requests per second per token. Retry after ${verdict.retryAfterSeconds}s.`,
        { 'retry-after': String(verdict.retryAfterSeconds) },
      );
    }
    await next();
  };
  app.use('/v1/*', limit);
  app.use('/osb/*', limit);

  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: deps.bodyLimitBytes,
      onError: () => {
        throw new HttpProblem(
          413,
          PROBLEM_TYPES.payloadTooLarge,
          'Payload too large',
          `The request body is larger than ${deps.bodyLimitBytes} bytes. Send less.`,
        );
      },
    }),
  );

  registerSystemRoutes(router, deps);
  for (const def of KINDS) registerResourceRoutes(router, def, deps.service, deps, deps.authorizer);
  registerDatabaseRoutes(router, deps);
  registerDatabaseUserRoutes(router, deps);
  registerAdminRoutes(router, deps);
  registerIamRoutes(router, deps);
  registerBillingRoutes(router, deps.billing);
  registerWebhookRoutes(router, deps.webhooks);
  registerBackupRoutes(router, deps);
  registerAgentRoutes(router, deps.agents);
  registerTargetRoutes(router, deps);
  // The Open Service Broker API (docs/osb.md), outside /v1: its own auth, versions and error bodies.
  app.route('/osb', createOsbApp(deps));

  app.doc31('/v1/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Kumo API',
      version: deps.version,
      description: 'The Kumo control-plane API. See docs/api.md for the conventions.',
    },
    security: [{ bearer: [] }],
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  router.table.push({ method: 'GET', path: '/v1/openapi.json', access: { public: true } });

  // No route answered. A path some route serves answers 405 with Allow, whatever the method (PURGE,
  // OPTIONS, …): 4xx, because a client's odd method is not Kumo's failure. Anything else is 404.
  // (Methods Node's parser does not know never get here; docs/api.md says what Node answers.)
  app.notFound((c) => {
    const { method, path } = c.req;
    const allowed = [...new Set(router.routesAt(path).flatMap((route) => allows(route.method)))];
    if (allowed.length > 0) {
      return problemResponse(
        {
          type: PROBLEM_TYPES.methodNotAllowed,
          title: 'Method not allowed',
          status: 405,
          detail: `${path} does not take ${method}; it takes ${allowed.join(', ')}.`,
          requestId: c.get('requestId'),
        },
        { allow: allowed.join(', ') },
      );
    }
    return problemResponse({
      type: PROBLEM_TYPES.notFound,
      title: 'Not found',
      status: 404,
      detail: `No route for ${method} ${path}. The API is described at /v1/openapi.json.`,
      requestId: c.get('requestId'),
    });
  });
  app.onError((err, c) => {
    const problem = toProblem(err, c.get('requestId'));
    // The store being away is an outage, logged by its supervisor once: a warning a request, no stack.
    if (problem.type === PROBLEM_TYPES.unavailable)
      c.get('logger')?.warn({ err: (err as Error)?.message }, 'request failed: the store is unavailable');
    else if (problem.status >= 500) c.get('logger')?.error({ err }, 'request failed');
    return problemResponse(problem, {
      ...(problem.status === 401 ? { 'www-authenticate': 'Bearer' } : {}),
      ...(err instanceof HttpProblem ? err.headers : {}),
    });
  });
  return router;
}

function sourceAddress(c: { env: unknown }): string | undefined {
  return (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket
    ?.remoteAddress;
}
