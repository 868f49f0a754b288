// `npm start` runs this: builds the console with Vite only when its sources (and the API types it
// imports) changed since the last build, by a hash of their contents kept next to the build.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

const here = import.meta.dirname;
const inputs = ['index.html', 'package.json', 'vite.config.ts', 'tsconfig.json', 'src', '../api/src'];
const stamp = join(here, 'dist', '.source-hash');

function files(path) {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((entry) => files(join(path, entry)));
}

const hash = createHash('sha256');
for (const file of inputs.flatMap((input) => files(join(here, input)))) {
  hash.update(file.slice(here.length)).update('\0').update(readFileSync(file)).update('\0');
}
const digest = hash.digest('hex');
if (
  existsSync(join(here, 'dist', 'index.html')) &&
  existsSync(stamp) &&
  readFileSync(stamp, 'utf8') === digest
) {
  process.stdout.write('console: up to date (sources unchanged since the last build)\n');
} else {
  execFileSync('npx', ['vite', 'build'], { cwd: here, stdio: 'inherit' });
  writeFileSync(stamp, digest);
}
