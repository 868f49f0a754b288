import { OpenAPIHono, type RouteConfig, createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Principal } from '../auth/token-store.js';
import type { Logger } from '../logger.js';
import { validationErrorFrom } from '../resources/validation.js';
import type { Authorizer } from '../auth/authorizer.js';
import { type Access, requireAccess } from './access.js';

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

  add(definition: RouteDefinition): void {
    const { access, handler, ...config } = definition;
    const route = createRoute({ ...config, middleware: [requireAccess(access, this.authorizer)] as const });
    // The handler's types come from the route's schemas at runtime; the generic machinery works on unknown.
    this.app.openapi(route, handler as never);
    this.table.push({ method: config.method.toUpperCase(), path: config.path, access });
  }
}

/** The validated part of a request (after the route's schemas ran). */
export function validated<T>(c: AppContext, target: 'json' | 'query' | 'param' | 'header'): T {
  return (c.req.valid as (t: string) => T)(target);
}
