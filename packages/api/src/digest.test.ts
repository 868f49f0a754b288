import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { reprDigest, sha256OfReprDigest } from './digest.js';

describe('Repr-Digest', () => {
  it('carries a SHA-256 as RFC 9530 writes it, and reads it back', () => {
    const sha = createHash('sha256').update('hello').digest();
    const header = reprDigest(sha.toString('hex'));
    expect(header).toBe(`sha-256=:${sha.toString('base64')}:`);
    expect(sha256OfReprDigest(header)).toBe(sha.toString('hex'));
    expect(sha256OfReprDigest(`md5=:AAAA:, ${header}`)).toBe(sha.toString('hex'));
    expect(sha256OfReprDigest(null)).toBeUndefined();
    expect(sha256OfReprDigest('md5=:AAAA:')).toBeUndefined();
  });
});
