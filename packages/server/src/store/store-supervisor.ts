import type { Logger } from '../logger.js';

/** What the supervisor watches and restarts (EmbeddedPostgres). */
export interface SupervisedServer {
  /** Whether the server's process is alive. Never throws. */
  isRunning(): Promise<boolean>;
  /** Starts the server again; resolves once it accepts connections, throws when it could not. */
  restart(): Promise<void>;
}

export interface StoreSupervisorOptions {
  /** How often the server's process is checked. Default: 1000 ms. */
  checkIntervalMs?: number;
  /** Wait before the first restart attempt; doubles after each failed one. Default: 250 ms. */
  restartDelayMs?: number;
  /** The longest wait between restart attempts. Default: 10 000 ms. */
  maxRestartDelayMs?: number;
}

/**
 * Keeps the embedded store running while Kumo runs: checks its process every checkIntervalMs and,
 * once it is gone, restarts it with exponential backoff until it runs again (no limit: Kumo is
 * useless without its store, and an outage ends as soon as the cause does). Logs the loss as an
 * error, each failed attempt as a warning and the recovery as info. Everything else heals by
 * itself meanwhile: requests answer 503, the pool and the notifier reconnect.
 */
export class StoreSupervisor {
  private stopped = true;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly checkIntervalMs: number;
  private readonly restartDelayMs: number;
  private readonly maxRestartDelayMs: number;

  constructor(
    private readonly server: SupervisedServer,
    private readonly logger: Logger,
    options: StoreSupervisorOptions = {},
  ) {
    this.checkIntervalMs = options.checkIntervalMs ?? 1000;
    this.restartDelayMs = options.restartDelayMs ?? 250;
    this.maxRestartDelayMs = options.maxRestartDelayMs ?? 10_000;
  }

  /** Begins watching. Idempotent. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.running = this.loop();
  }

  /** Stops watching; waits for a restart in flight to finish, so that the server can be stopped after. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await this.sleep(this.checkIntervalMs);
      if (this.stopped || (await this.server.isRunning())) continue;
      this.logger.error('the embedded store (PostgreSQL) stopped unexpectedly; restarting it');
      await this.restart();
    }
  }

  private async restart(): Promise<void> {
    const since = Date.now();
    for (let attempt = 1; ; attempt++) {
      const delayMs = Math.min(this.maxRestartDelayMs, this.restartDelayMs * 2 ** (attempt - 1));
      await this.sleep(delayMs);
      if (this.stopped) return;
      try {
        await this.server.restart();
        this.logger.info(
          { attempts: attempt, downMs: Date.now() - since },
          'the embedded store is running again',
        );
        return;
      } catch (err) {
        this.logger.warn(
          {
            err: (err as Error).message,
            attempt,
            retryInMs: Math.min(this.maxRestartDelayMs, this.restartDelayMs * 2 ** attempt),
          },
          'restarting the embedded store failed; retrying',
        );
      }
    }
  }

  /** Resolves after ms, or at once when stop() is called. */
  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
