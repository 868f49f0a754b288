import { Periodic } from '../controllers/runtime/periodic.js';
import type { Logger } from '../logger.js';
import type { InvoiceStore } from './invoice-store.js';

/** How often a control-plane replica looks for months to close. */
const EVERY_MS = 5 * 60_000;

/**
 * Closes each org's month into its invoice once the month (in the org's time zone) and its grace
 * hour are over. Every control-plane replica runs one; the invoice store makes closing idempotent,
 * so several at once issue each invoice once.
 */
export class InvoiceCloser extends Periodic {
  constructor(invoices: InvoiceStore, logger: Logger) {
    super(
      async (now) => {
        for (const invoice of await invoices.closeDue(now))
          logger.info(
            { org: invoice.org, month: invoice.period.month, number: invoice.number },
            'invoice issued',
          );
      },
      EVERY_MS,
      (err) => logger.warn({ err: String(err) }, 'closing invoices failed; retrying later'),
    );
  }
}
