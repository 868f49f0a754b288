import type { Logger } from '../logger.js';
import type { InvoiceStore } from './invoice-store.js';

/** How often a control-plane replica looks for months to close. */
const EVERY_MS = 5 * 60_000;

/**
 * Closes each org's month into its invoice once the month (in the org's time zone) and its grace
 * hour are over. Every control-plane replica runs one; the invoice store makes closing idempotent,
 * so several at once issue each invoice once.
 */
export class InvoiceCloser {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly invoices: InvoiceStore,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.run(), EVERY_MS);
    this.timer.unref();
    void this.run();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass (one at a time): issues what is due; a failure is logged and retried next pass. */
  run(): Promise<void> {
    this.running ??= this.invoices
      .closeDue(Math.floor(Date.now() / 1000))
      .then((issued) => {
        for (const invoice of issued)
          this.logger.info(
            { org: invoice.org, month: invoice.period.month, number: invoice.number },
            'invoice issued',
          );
      })
      .catch((err: unknown) =>
        this.logger.warn({ err: String(err) }, 'closing invoices failed; retrying later'),
      )
      .finally(() => (this.running = undefined));
    return this.running;
  }
}
