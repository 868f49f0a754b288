import { DriverError } from '../drivers/driver.js';

/** A backup failure with a reason for conditions and events. */
export class BackupError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** The failure as a BackupError: a driver's reason is kept, anything else gets `fallback`. */
export function asBackupError(err: unknown, fallback: string): BackupError {
  if (err instanceof BackupError) return err;
  if (err instanceof DriverError) return new BackupError(err.reason, err.message);
  return new BackupError(fallback, String((err as Error)?.message ?? err));
}
