// npm run docs:cli — writes docs/cli.md from the command definitions.
import { writeFile } from 'node:fs/promises';
import { cliMarkdown } from './commands/meta.js';
import { processRuntime } from './core/runtime.js';
import { buildProgram } from './program.js';

await writeFile(
  new URL('../../../docs/cli.md', import.meta.url),
  cliMarkdown(buildProgram(processRuntime())),
);
