import type { Logger } from '../logger.js';
import type { Bus, BusHandler, BusMessage } from './bus.js';

export interface InProcessBusOptions {
  /** Redeliveries of a message whose handler keeps rejecting before it is dropped. Default: 5. */
  maxAttempts?: number;
  /** First redelivery delay; doubles each attempt. Default: 50 ms. */
  retryDelayMs?: number;
}

/**
 * The single-node bus: hands messages to subscribers in this process. "Accepted" means queued in
 * memory, so a crash loses in-flight nudges — harmless, because the outbox row was already
 * committed and every controller resyncs periodically. Handlers run asynchronously, never inside publish.
 */
export class InProcessBus implements Bus {
  private readonly subscribers = new Map<string, Set<BusHandler>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;

  constructor(
    private readonly logger: Logger,
    options: InProcessBusOptions = {},
  ) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 50;
  }

  get connected(): boolean {
    return !this.closed;
  }

  async publish(message: BusMessage): Promise<void> {
    if (this.closed) throw new Error('the bus is closed');
    for (const handler of this.subscribers.get(message.kind) ?? []) this.deliver(handler, message, 1, 0);
  }

  subscribe(kind: string, handler: BusHandler): () => void {
    const set = this.subscribers.get(kind) ?? new Set();
    set.add(handler);
    this.subscribers.set(kind, set);
    return () => set.delete(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.subscribers.clear();
  }

  private deliver(handler: BusHandler, message: BusMessage, attempt: number, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed || !this.subscribers.get(message.kind)?.has(handler)) return;
      handler(message).catch((err: unknown) => {
        if (attempt >= this.maxAttempts) {
          this.logger.warn(
            { err: String(err), message },
            'bus handler kept failing; dropping the nudge (resync will catch up)',
          );
          return;
        }
        this.deliver(handler, message, attempt + 1, this.retryDelayMs * 2 ** (attempt - 1));
      });
    }, delayMs);
    this.timers.add(timer);
  }
}
