import { OpenAPIHono, type RouteConfig, createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Principal } from '../auth/token-store.js';
import type { Logger } from '../logger.js';
import { validationErrorFrom } from '../resources/validation.js';
import type { Authorizer } from '../auth/authorizer.js';
import { type Access, requireAccess } from './access.js';
import { checkRequestInput } from './request-input.js';

export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal | undefined;
    /** The principal the request's token stands for now (undefined once revoked or expired). */
    reauthenticate: () => Promise<Principal | undefined>;
    /**
     * Decides the route's access again, for the token as it is now: long-lived streams call it
     * now and then and end when it throws.
     */
    recheckAccess: () => Promise<void>;
    logger: Logger;
  };
}

export type AppContext = Context<AppEnv>;

export interface RouteDefinition extends Omit<RouteConfig, 'middleware'> {
  /** Who may call it. Required: a route cannot be added without saying. */
  access: Access;
  handler: (c: AppContext) => Response | Promise<Response>;
}

export interface RouteTableEntry {
  method: string;
  path: string;
  access: Access;
}

/**
 * The only way routes are added. Each route is documented in the OpenAPI document from the same
 * zod schemas that validate its requests, and authorised by the access it declares.
 */
export class KumoRouter {
  constructor(private readonly authorizer: Authorizer) {}

  readonly app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const prefix = result.target === 'json' ? [] : [result.target === 'param' ? 'path' : result.target];
        throw validationErrorFrom(
          result.error,
          result.target === 'json' ? 'request body' : `request ${prefix[0]}`,
          prefix,
        );
      }
    },
  });
  readonly table: RouteTableEntry[] = [];

  /**
   * Adds a route. Before its access is decided, its path, query and body are checked for what must
   * never reach the store (request-input.ts); then its access; then its schemas; then the handler.
   */
  add(definition: RouteDefinition): void {
    const { access, handler, ...config } = definition;
    const body = config.request?.body;
    const input = checkRequestInput(
      body && {
        mediaTypes: Object.keys(body.content).map((type) => type.toLowerCase()),
        required: body.required === true,
      },
    );
    const route = createRoute({
      ...config,
      middleware: [input, requireAccess(access, this.authorizer)] as const,
    });
    // The handler's types come from the route's schemas at runtime; the generic machinery works on unknown.
    this.app.openapi(route, handler as never);
    this.table.push({ method: config.method.toUpperCase(), path: config.path, access });
  }

  /** The routes, of any method, whose path template matches this request path. */
  routesAt(path: string): RouteTableEntry[] {
    return this.table.filter((route) => this.pattern(route.path).test(path));
  }

  private readonly patterns = new Map<string, RegExp>();

  /** `/v1/orgs/{name}` as a regular expression: a parameter is one non-empty path segment, as in Hono. */
  private pattern(template: string): RegExp {
    let pattern = this.patterns.get(template);
    if (!pattern) {
      const literal = template.split(/\{[^}]+\}/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      pattern = new RegExp(`^${literal.join('[^/]+')}$`);
      this.patterns.set(template, pattern);
    }
    return pattern;
  }
}

/** The methods a route of this method answers: a GET route answers HEAD too. */
export function allows(method: string): string[] {
  return method === 'GET' ? ['GET', 'HEAD'] : [method];
}

/** The validated part of a request (after the route's schemas ran). */
export function validated<T>(c: AppContext, target: 'json' | 'query' | 'param' | 'header'): T {
  return (c.req.valid as (t: string) => T)(target);
}
