// Builds the `kumo` command into dist/: one ES-module bundle of the CLI with the server, the API
// schemas and their npm dependencies, split so that a command loads only what it runs (the server
// and the AWS SDK are chunks of their own, imported when `kumo up`, `server` or `agent` starts).
// `npm ci` (prepare), `npm start` and the test run build it; nothing runs TypeScript at run time.
// It rebuilds only when its inputs changed (a hash of them, kept in dist/.source-hash; --force
// rebuilds anyway), and replaces dist/ in one rename so that a `kumo` starting meanwhile finds
// either the old build or the new one.
//
// Modules that read files next to them (the store's migrations, the ACL proxy's script, the
// console, the CLI's package.json) find them by their own import.meta.url. In a bundle every module
// of a chunk shares one URL, so each such module is given its source path mirrored under
// dist/root/, and those files are copied there: the same relative paths hold from the sources and
// from the bundle, in the repository and installed from the packed package.
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import process from 'node:process';
import { build } from 'esbuild';
import { sourceHash, upToDate, writeStamp } from '../../scripts/source-hash.mjs';

const here = import.meta.dirname;
const repo = join(here, '..', '..');
const dist = join(here, 'dist');
const next = join(here, `dist.next-${process.pid}`);
const mirror = join(next, 'root');

/** What bundled modules read at run time, by their path in the repository. */
const files = [
  'packages/cli/package.json',
  'packages/server/src/store/migrations',
  'packages/server/src/drivers/local/acl-proxy.mjs',
  'packages/console/dist',
];

/** Gives each module that reads import.meta.url the URL of its source file mirrored under dist/root/. */
const ownUrl = {
  name: 'kumo-own-url',
  setup(builder) {
    builder.onLoad({ filter: /packages\/(cli|server|api)\/src\/.*\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const mirrored = './' + join('root', relative(repo, args.path));
      const url = `new URL(${JSON.stringify(mirrored)}, import.meta.url).href`;
      return { contents: source.replaceAll('import.meta.url', url), loader: 'ts' };
    });
  },
};

/** What the bundle is made of: a change to any of these rebuilds it. */
const inputs = [
  'package-lock.json',
  'scripts/source-hash.mjs',
  'packages/cli/build.mjs',
  ...['cli', 'server', 'api', 'terraform-provider'].flatMap((p) => [
    `packages/${p}/package.json`,
    `packages/${p}/src`,
  ]),
  'packages/console/dist/.source-hash',
];

const started = Date.now();
const digest = sourceHash(repo, inputs);
const stamp = join(dist, '.source-hash');
if (!process.argv.includes('--force') && upToDate(stamp, digest)) {
  process.stdout.write('cli: up to date (sources unchanged since the last build)\n');
  process.exit(0);
}
rmSync(next, { recursive: true, force: true });
// Bundled CommonJS modules call require() and read __dirname; ES modules have neither.
const banner = {
  js: [
    "import { createRequire as kumoCreateRequire } from 'node:module';",
    "import { fileURLToPath as kumoFileURLToPath } from 'node:url';",
    'const require = kumoCreateRequire(import.meta.url);',
    'const __filename = kumoFileURLToPath(import.meta.url);',
    "const __dirname = kumoFileURLToPath(new URL('.', import.meta.url));",
  ].join('\n'),
};
await build({
  entryPoints: { kumo: join(here, 'src', 'bin.ts') },
  outdir: next,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  chunkNames: '[name]-[hash]',
  legalComments: 'linked',
  logLevel: 'warning',
  banner,
  plugins: [ownUrl],
});
// The Terraform provider: one file of its own, which `kumo terraform install` copies where
// Terraform finds providers (it runs without the rest of the bundle).
await build({
  entryPoints: [join(repo, 'packages', 'terraform-provider', 'src', 'main.ts')],
  outfile: join(mirror, 'packages', 'terraform-provider', 'dist', 'terraform-provider-kumo.mjs'),
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  legalComments: 'linked',
  logLevel: 'warning',
  banner,
});
for (const file of files) {
  const from = join(repo, file);
  if (!existsSync(from)) {
    // Only the console may be missing (it is built by `npm start` and the console's tests).
    if (file !== 'packages/console/dist') throw new Error(`build: ${file} is missing`);
    continue;
  }
  mkdirSync(dirname(join(mirror, file)), { recursive: true });
  cpSync(from, join(mirror, file), { recursive: true });
}
writeStamp(join(next, '.source-hash'), digest);
const old = join(here, `dist.old-${process.pid}`);
if (existsSync(dist)) renameSync(dist, old);
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
process.stdout.write(`cli: built ${relative(repo, dist)}/kumo.js in ${Date.now() - started} ms\n`);
