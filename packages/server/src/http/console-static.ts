import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './router.js';

/** Where `npm run build -w @kumo/console` puts the console (npm start builds it first). */
export const CONSOLE_DIST = fileURLToPath(new URL('../../../console/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

const API_PATHS = /^\/(v1|livez|readyz|metrics)(\/|$)/;

/**
 * Serves the web console's static files at / for GET requests outside the API: its files, and
 * index.html at / (the console routes in the URL's fragment, #/p/…, so no other path is one of its
 * pages). Every other path falls through to the API's 404 problem+json. Public: the console holds
 * no data, it signs in with an API token. Its pages may only talk to this origin
 * (Content-Security-Policy).
 */
export function serveConsole(dist = CONSOLE_DIST): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if ((c.req.method !== 'GET' && c.req.method !== 'HEAD') || API_PATHS.test(c.req.path)) return next();
    const relative = normalize(decodeURIComponent(c.req.path)).replace(/^(\.\.(\/|$))+/, '');
    const file = join(dist, relative);
    if (!file.startsWith(dist)) return next();
    const asset = extname(file) !== '' ? await readFile(file).catch(() => undefined) : undefined;
    if (!asset && relative !== '/') return next();
    const body = asset ?? (await readFile(join(dist, 'index.html')).catch(() => undefined));
    if (!body) {
      return c.text(
        'The web console is not built. Run `npm run build -w @kumo/console` (npm start does).',
        503,
      );
    }
    const type = asset ? (TYPES[extname(file)] ?? 'application/octet-stream') : TYPES['.html']!;
    return new Response(new Uint8Array(body), {
      headers: {
        'content-type': type,
        'cache-control':
          asset && relative.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        'content-security-policy':
          "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        'x-content-type-options': 'nosniff',
      },
    });
  };
}
