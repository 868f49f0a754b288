import { lookup as dnsLookup } from 'node:dns';
import { BlockList, type LookupFunction, isIP } from 'node:net';

/**
 * Addresses a webhook receiver may not have unless the operator allows private receivers
 * (KUMO_WEBHOOK_ALLOW_PRIVATE): loopback, private, link-local (cloud metadata), shared, unspecified,
 * multicast and reserved ranges, in IPv4 and IPv6 (IPv4-mapped ones included). Otherwise a customer
 * could make Kumo POST to its own API, its store, or its hosts' neighbours.
 */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 127],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv6');

/** True for an address a receiver may not have (see PRIVATE). */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && PRIVATE.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** The host of a receiver URL when it is a private IP literal or localhost (refused at admission). */
export function privateHost(url: string): string | undefined {
  const host = URL.canParse(url) ? new URL(url).hostname.replace(/^\[|\]$/g, '') : '';
  if (host === 'localhost' || host.endsWith('.localhost') || isPrivateAddress(host)) return host;
  return undefined;
}

/** A DNS lookup for receiver connections that fails for names resolving to a private address. */
export const publicOnlyLookup = ((hostname: string, options: object, callback: Callback) => {
  dnsLookup(hostname, options, (err, address, family) => {
    if (err) return callback(err, address, family);
    const all = Array.isArray(address) ? (address as Array<{ address: string }>) : [{ address }];
    const refused = all.find((a) => isPrivateAddress(a.address));
    if (!refused) return callback(null, address, family);
    callback(
      Object.assign(new Error(`${hostname} resolves to ${refused.address}, a private address`), {
        code: 'EPRIVATEADDRESS',
      }),
      address,
      family,
    );
  });
}) as unknown as LookupFunction;

type Callback = (err: NodeJS.ErrnoException | null, address: unknown, family?: number) => void;
