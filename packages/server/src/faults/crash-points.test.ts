import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { CRASH_POINTS } from '../../../../tests/support/crash-scenarios.js';

const SRC = join(import.meta.dirname, '..');

async function* sources(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) yield path;
  }
}

it('has every crash point in the source crashed at by a scenario of the crash-point suite', async () => {
  const inSource = new Set<string>();
  for await (const file of sources(SRC))
    for (const [, point] of (await readFile(file, 'utf8')).matchAll(/\.reach\('([a-z0-9.-]+)'\)/g))
      inSource.add(point!);
  expect(inSource.size).toBeGreaterThan(30);
  const covered = new Set<string>(Object.values(CRASH_POINTS).flat());
  expect(
    [...inSource].filter((p) => !covered.has(p)),
    'points no scenario must reach',
  ).toEqual([]);
  expect(
    [...covered].filter((p) => !inSource.has(p)),
    'points listed but gone from the source',
  ).toEqual([]);
});
