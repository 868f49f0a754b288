import { open, rename } from 'node:fs/promises';

/**
 * Writes text to path atomically and durably (a temporary file, fsync, rename): a crash or a power
 * loss mid-write leaves the old content or the new, whole, never a mix.
 */
export async function writeFileDurably(path: string, text: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.tmp`;
  const file = await open(tmp, 'w', mode);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}
