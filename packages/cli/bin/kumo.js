#!/usr/bin/env node
// The `kumo` command: the built bundle (packages/cli/build.mjs; `npm ci` and `npm start` build it).
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const bundle = new URL('../dist/kumo.js', import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write('kumo: not built yet; run `npm run build` in the Kumo checkout first\n');
  process.exit(1);
}
await import(bundle.href);
