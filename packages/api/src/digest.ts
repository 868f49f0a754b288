/**
 * The SHA-256 of a download in its Repr-Digest header (RFC 9530: `sha-256=:<base64>:`): one
 * definition for the server that sends it and the CLI and console that check it.
 */
export function reprDigest(sha256Hex: string): string {
  const bytes = sha256Hex.match(/../g)!.map((h) => String.fromCharCode(parseInt(h, 16)));
  return `sha-256=:${btoa(bytes.join(''))}:`;
}

/** The SHA-256 (lowercase hex) in a Repr-Digest header, or undefined without one. */
export function sha256OfReprDigest(header: string | null | undefined): string | undefined {
  const base64 = /(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):/.exec(header ?? '')?.[1];
  return base64 ? hex(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))) : undefined;
}

/** Bytes as lowercase hexadecimal. */
export function hex(bytes: ArrayBuffer | Uint8Array): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
