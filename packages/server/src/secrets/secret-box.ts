import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { SetupError } from '../errors.js';

const VERSION = 1;

/**
 * Authenticated encryption of small secrets with the platform's master key (AES-256-GCM, a random
 * 96-bit nonce per secret). Layout: version byte, nonce, tag, ciphertext. Decrypting with another
 * key or tampered bytes throws.
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32)
      throw new SetupError('The master key must be 32 bytes (base64 in KUMO_MASTER_KEY).');
  }

  /**
   * The key from `configured` (base64) when given, else from `file`, created (mode 0600) with a
   * random key on first use. Keep the file: without it, stored secrets cannot be read.
   */
  static async load(configured: string | undefined, file: string): Promise<SecretBox> {
    if (configured) return new SecretBox(Buffer.from(configured, 'base64'));
    if (!existsSync(file)) {
      await writeFile(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' }).catch(
        (err) => {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        },
      );
      await chmod(file, 0o600);
    }
    return new SecretBox(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64'));
  }

  seal(plaintext: string): Buffer {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), nonce, cipher.getAuthTag(), body]);
  }

  open(sealed: Buffer): string {
    if (sealed[0] !== VERSION) throw new Error('unknown secret format');
    const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(1, 13));
    decipher.setAuthTag(sealed.subarray(13, 29));
    try {
      return Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()]).toString('utf8');
    } catch {
      throw new SetupError(
        'A secret in the store was sealed with another master key (or was tampered with). Every Kumo on one store needs the same KUMO_MASTER_KEY.',
      );
    }
  }
}
