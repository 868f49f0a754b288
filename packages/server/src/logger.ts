import { pino } from 'pino';

export type Logger = pino.Logger;

/** JSON logs to stderr (stdout is kept for what `kumo up` prints for people). */
export function createLogger(level: string): Logger {
  return pino(
    { level, base: undefined, redact: ['password', '*.password', 'token', '*.token', 'authorization'] },
    pino.destination(2),
  );
}
