import type { WriteContext } from '../store/resource-store.js';
import type { AppContext } from './router.js';

/** Who is making this request and from where, for the audit log of the writes it makes. */
export function writeContext(c: AppContext): WriteContext {
  const principal = c.get('principal');
  // The peer address is what Kumo knows; X-Forwarded-For is whatever the client says, so it is
  // recorded next to it, never instead of it.
  const peer = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket
    ?.remoteAddress;
  const forwarded = c.req.header('x-forwarded-for')?.slice(0, 200);
  const source = forwarded ? `${peer ?? 'unknown'} (x-forwarded-for: ${forwarded})` : peer;
  return {
    actor: principal?.id ?? 'anonymous',
    ...(principal ? { tokenId: principal.tokenId } : {}),
    requestId: c.get('requestId'),
    ...(source ? { source } : {}),
  };
}
