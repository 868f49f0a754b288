// The builds that `npm start` and the tests run skip their work when their inputs are unchanged:
// this hashes the contents of files and directory trees, kept as a stamp next to the build.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

function files(path) {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .filter((entry) => entry !== 'node_modules' && !entry.endsWith('.test.ts'))
    .flatMap((entry) => files(join(path, entry)));
}

/** A digest of the paths (files or trees, relative to base) and their contents. */
export function sourceHash(base, inputs) {
  const hash = createHash('sha256');
  for (const file of inputs.flatMap((input) => files(join(base, input)))) {
    hash.update(relative(base, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

/** Whether stamp holds digest (the build it stands next to was made from these inputs). */
export function upToDate(stamp, digest) {
  return existsSync(stamp) && readFileSync(stamp, 'utf8') === digest;
}

export function writeStamp(stamp, digest) {
  writeFileSync(stamp, digest);
}
