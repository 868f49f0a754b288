export { buildProgram } from './program.js';
export { cliMarkdown } from './commands/meta.js';
