import { CommanderError } from 'commander';
import { CliError, EXIT } from './core/exit-codes.js';
import { processRuntime } from './core/runtime.js';
import { runsKumo } from './commands/serve.js';
import { buildProgram } from './program.js';

// The process's own setting, made once at its entry: under Node 20 the AWS SDK (the S3 backup
// store) warns at every start that its releases after January 2027 need Node 22. Kumo's lockfile
// pins the SDK and Kumo supports Node 20.19 and later (README), so the warning would only alarm
// operators; it stays on where they turned it on themselves.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const runtime = processRuntime();
const program = buildProgram(runtime);
// `kumo get db -w | head -1` closes the pipe early: that ends a client command quietly, as it
// would end cat. Kumo's own programs (up, server, agent) carry on and stop cleanly on a signal.
program.hook('preAction', (_program, command) => {
  if (runsKumo(command)) return;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
});
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
// A finished command ends the process at once: otherwise Node's fetch keeps its idle keep-alive
// connection (and the process) around for another ~100 ms. Every command, `kumo up` included,
// has finished its work when parseAsync settles; stdout and stderr are synchronous here (Linux).
process.exit();
