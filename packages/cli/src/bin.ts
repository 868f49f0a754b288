import { CommanderError } from 'commander';
import { CliError, EXIT } from './core/exit-codes.js';
import { processRuntime } from './core/runtime.js';
import { buildProgram } from './program.js';

const runtime = processRuntime();
const program = buildProgram(runtime);
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit 0; anything commander refused is a usage mistake (its message is already printed).
    process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
  } else if (err instanceof CliError) {
    runtime.stderr.write(`kumo: ${err.message}\n`);
    process.exitCode = err.code;
  } else {
    runtime.stderr.write(
      `kumo: unexpected error: ${(err as Error)?.stack ?? String(err)}\nPlease report it.\n`,
    );
    process.exitCode = EXIT.failure;
  }
}
