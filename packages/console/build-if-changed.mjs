// `npm start` runs this: builds the console with Vite only when its sources (and the API types it
// imports) changed since the last build, by a hash of their contents kept next to the build.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { sourceHash, upToDate, writeStamp } from '../../scripts/source-hash.mjs';

const here = import.meta.dirname;
const inputs = ['index.html', 'package.json', 'vite.config.ts', 'tsconfig.json', 'src', '../api/src'];
const stamp = join(here, 'dist', '.source-hash');

const digest = sourceHash(here, inputs);
if (existsSync(join(here, 'dist', 'index.html')) && upToDate(stamp, digest)) {
  process.stdout.write('console: up to date (sources unchanged since the last build)\n');
} else {
  execFileSync('npx', ['vite', 'build'], { cwd: here, stdio: 'inherit' });
  writeStamp(stamp, digest);
}
