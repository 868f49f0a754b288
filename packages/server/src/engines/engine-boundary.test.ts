import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENGINES } from './registry.js';

// Core code, the HTTP layer, the CLI and the console learn engines from the registry (the CLI and
// the console through GET /v1/engines): no string literal in them names an engine. Engine modules
// (engines/<name>/), tests and test helpers may; so may the store, which is itself a PostgreSQL.
const ROOT = join(import.meta.dirname, '../../../..');
const SCANNED = ['packages/server/src', 'packages/api/src', 'packages/cli/src', 'packages/console/src'];
const EXEMPT = [
  ...ENGINES.map((engine) => `packages/server/src/engines/${engine.name}/`),
  'packages/server/src/store/',
  'packages/server/src/testing/',
];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory())
      return entry === 'node_modules' || entry === 'dist' ? [] : sources(path);
    return /\.(ts|tsx|mjs)$/.test(entry) && !/\.test\.tsx?$/.test(entry) ? [path] : [];
  });
}

describe('the engine boundary', () => {
  it('keeps engine names out of every file but the engine modules', () => {
    const literal = new RegExp(`(['"\`])(${ENGINES.map((e) => e.name).join('|')})\\1`, 'g');
    const found: string[] = [];
    for (const file of SCANNED.flatMap((dir) => sources(join(ROOT, dir)))) {
      const path = relative(ROOT, file);
      if (EXEMPT.some((prefix) => path.startsWith(prefix))) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (line.match(literal)) found.push(`${path}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(found).toEqual([]);
  });

  it('finds a name where one is written (the check bites)', () => {
    const literal = new RegExp(`(['"\`])(${ENGINES.map((e) => e.name).join('|')})\\1`);
    expect(`if (engine === '${ENGINES[0]!.name}')`).toMatch(literal);
    expect(`--engine ${ENGINES[0]!.name} --plan small`).not.toMatch(literal);
  });
});
