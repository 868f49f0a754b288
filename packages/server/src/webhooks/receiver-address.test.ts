import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isPrivateAddress, privateHost, publicOnlyLookup } from './receiver-address.js';
import { postToReceiver } from './receiver-post.js';
import { webhookSpecCheck } from './webhook-spec.js';

describe('webhook receivers at private addresses', () => {
  it.each([
    { address: '127.0.0.1', private: true, reason: 'loopback' },
    { address: '10.1.2.3', private: true, reason: 'RFC 1918' },
    { address: '172.20.0.1', private: true, reason: 'RFC 1918' },
    { address: '192.168.1.1', private: true, reason: 'RFC 1918' },
    { address: '169.254.169.254', private: true, reason: 'link-local: cloud metadata' },
    { address: '100.64.0.1', private: true, reason: 'shared address space' },
    { address: '0.0.0.0', private: true, reason: 'unspecified' },
    { address: '::1', private: true, reason: 'IPv6 loopback' },
    { address: 'fd00::1', private: true, reason: 'IPv6 unique local' },
    { address: 'fe80::1', private: true, reason: 'IPv6 link-local' },
    { address: '::ffff:127.0.0.1', private: true, reason: 'IPv4-mapped loopback' },
    { address: '93.184.216.34', private: false, reason: 'a public IPv4 address' },
    { address: '2606:4700::1111', private: false, reason: 'a public IPv6 address' },
  ])('$address: private=$private ($reason)', ({ address, private: expected }) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });

  it('refuses private literals and localhost in URLs, not names', () => {
    expect(privateHost('http://127.0.0.1:8080/x')).toBe('127.0.0.1');
    expect(privateHost('http://[::1]/x')).toBe('::1');
    expect(privateHost('https://localhost/x')).toBe('localhost');
    expect(privateHost('https://hooks.example.com/x')).toBeUndefined();
  });

  it('refuses such a URL when the webhook is created, unless private receivers are allowed', () => {
    const spec = { url: 'http://169.254.169.254/latest/meta-data' };
    expect(webhookSpecCheck(false)(spec)).toEqual([
      { field: 'spec.url', message: expect.stringContaining('169.254.169.254 is a private address') },
    ]);
    expect(webhookSpecCheck(true)(spec)).toEqual([]);
  });

  it('fails the lookup of a name that resolves to a private address', async () => {
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) =>
      publicOnlyLookup('localhost', { all: true }, (e) => resolve(e)),
    );
    expect(err?.code).toBe('EPRIVATEADDRESS');
  });

  it('does not POST to a loopback receiver unless private receivers are allowed', async () => {
    const server = createServer((_req, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      await expect(postToReceiver(url, {}, '{}', { timeoutMs: 2000, allowPrivate: false })).rejects.toThrow(
        /127\.0\.0\.1 is a private address/,
      );
      await expect(postToReceiver(url, {}, '{}', { timeoutMs: 2000, allowPrivate: true })).resolves.toEqual({
        status: 204,
        text: '',
      });
    } finally {
      server.close();
    }
  });
});
