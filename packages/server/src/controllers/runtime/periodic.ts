/**
 * A control-plane pass that runs once at start and then every `everyMs`, one at a time (a call
 * while one runs returns that one). It never throws: a failed pass is reported and the next one
 * tries again. The pass gets the current epoch second, so tests can run it at any moment.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly pass: (now: number) => Promise<void>,
    private readonly everyMs: number,
    private readonly failed: (err: unknown) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.run(), this.everyMs);
    this.timer.unref();
    void this.run();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  run(now = Math.floor(Date.now() / 1000)): Promise<void> {
    this.running ??= this.pass(now)
      .catch(this.failed)
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          void this.run();
        }
      });
    return this.running;
  }

  /**
   * A pass soon, because something it reads changed: now, or right after the one running (which
   * may have read it before the change).
   */
  nudge(): void {
    if (this.running) this.again = true;
    else void this.run();
  }
}
