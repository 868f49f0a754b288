import { CommanderError } from 'commander';
import { CliError, EXIT } from './core/exit-codes.js';
import { processRuntime } from './core/runtime.js';
import { buildProgram } from './program.js';

// The process's own setting, made once at its entry: under Node 20 the AWS SDK (the S3 backup
// store) warns at every start that its releases after January 2027 need Node 22. Kumo's lockfile
// pins the SDK and Kumo supports Node 20.19 and later (README), so the warning would only alarm
// operators; it stays on where they turned it on themselves.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const runtime = processRuntime();
const program = buildProgram(runtime);
try {
  // `kumo --version` is `kumo version` (client and, when logged in, server), as kubectl has it.
  const [node, script, ...args] = process.argv;
  const argv = args[0] === '--version' ? [node!, script!, 'version', ...args.slice(1)] : process.argv;
  await program.parseAsync(argv);
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
