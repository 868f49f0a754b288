import type { Bus } from '../../bus/bus.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../metrics.js';
import type { ResourceKey } from '../../store/resource-rows.js';
import { type Reconciler, TerminalError } from './reconciler.js';
import { WorkQueue, type WorkQueueOptions } from './work-queue.js';

export interface ControllerOptions extends WorkQueueOptions {
  /** Keys reconciled in parallel (never the same key twice). Default: 2. */
  workers?: number;
  /** Every key is reconciled at least this often, ±10% jitter. Default: 5 minutes. */
  resyncIntervalMs?: number;
}

export interface ControllerDeps {
  bus: Bus;
  /** Every key of the reconciler's kind, for resync. */
  listKeys: () => Promise<ResourceKey[]>;
  /** Shows a terminal error in the resource's status. */
  reportTerminalError: (key: ResourceKey, err: TerminalError) => Promise<void>;
  logger: Logger;
  metrics: Metrics;
}

/**
 * Runs a reconciler: a work queue fed by bus nudges and a periodic resync, N workers, and the one
 * retry policy of the system (see handleResult). stop() lets in-flight reconciles finish.
 */
export class Controller {
  private readonly queue: WorkQueue;
  private readonly workers: number;
  private readonly resyncIntervalMs: number;
  private readonly abort = new AbortController();
  private running: Promise<void>[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly reconciler: Reconciler,
    private readonly deps: ControllerDeps,
    options: ControllerOptions = {},
  ) {
    this.queue = new WorkQueue(options);
    this.workers = options.workers ?? 2;
    this.resyncIntervalMs = options.resyncIntervalMs ?? 5 * 60_000;
  }

  get name(): string {
    return this.reconciler.name;
  }

  start(): void {
    this.unsubscribe = this.deps.bus.subscribe(this.reconciler.kind, async (m) => {
      // Status is a reconciler's output, not its input: writing it is no reason to reconcile again.
      if (m.action === 'update-status') return;
      this.enqueue({ kind: m.kind, project: m.project, name: m.name });
    });
    for (let i = 0; i < this.workers; i++) this.running.push(this.work());
    void this.resync();
  }

  /** Stops taking work and waits for the reconciles in flight; the abort signal tells them to hurry. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearTimeout(this.resyncTimer);
    this.queue.shutDown();
    await Promise.all(this.running);
    this.abort.abort();
  }

  enqueue(key: ResourceKey): void {
    this.queue.add(encodeKey(key));
    this.deps.metrics.queueDepth.set({ controller: this.name }, this.queue.length);
  }

  private async resync(): Promise<void> {
    try {
      for (const key of await this.deps.listKeys()) this.enqueue(key);
    } catch (err) {
      this.deps.logger.warn({ controller: this.name, err: (err as Error).message }, 'resync failed');
    }
    const jitter = 1 + (Math.random() * 0.2 - 0.1);
    this.resyncTimer = setTimeout(() => void this.resync(), this.resyncIntervalMs * jitter);
    this.resyncTimer.unref?.();
  }

  private async work(): Promise<void> {
    for (;;) {
      const encoded = await this.queue.get();
      if (encoded === undefined) return;
      this.deps.metrics.queueDepth.set({ controller: this.name }, this.queue.length);
      const key = decodeKey(this.reconciler.kind, encoded);
      const end = this.deps.metrics.reconcileDuration.startTimer({ controller: this.name });
      try {
        const result = await this.reconciler.reconcile(key, this.abort.signal);
        this.queue.forget(encoded);
        if (result?.requeueAfterMs !== undefined) this.queue.addAfter(encoded, result.requeueAfterMs);
        this.deps.metrics.reconciles.inc({
          controller: this.name,
          result: result?.requeueAfterMs ? 'requeue' : 'success',
        });
      } catch (err) {
        await this.handleError(key, encoded, err);
      } finally {
        end();
        this.queue.done(encoded);
      }
    }
  }

  /** The retry policy: terminal errors stop and show in status; anything else backs off per key. */
  private async handleError(key: ResourceKey, encoded: string, err: unknown): Promise<void> {
    if (err instanceof TerminalError) {
      this.queue.forget(encoded);
      this.deps.metrics.reconciles.inc({ controller: this.name, result: 'terminal' });
      this.deps.logger.warn(
        { controller: this.name, key, reason: err.reason, err: err.message },
        'terminal reconcile error',
      );
      await this.deps.reportTerminalError(key, err).catch((reportErr: unknown) => {
        this.deps.logger.error(
          { controller: this.name, key, err: String(reportErr) },
          'could not report a terminal error',
        );
        this.queue.addRateLimited(encoded);
      });
      return;
    }
    const delay = this.queue.addRateLimited(encoded);
    this.deps.metrics.reconciles.inc({ controller: this.name, result: 'error' });
    this.deps.logger.warn(
      { controller: this.name, key, err: (err as Error)?.message ?? String(err), retryInMs: delay },
      'reconcile failed; retrying',
    );
  }
}

function encodeKey(key: ResourceKey): string {
  return `${key.project}/${key.name}`;
}

function decodeKey(kind: string, encoded: string): ResourceKey {
  const slash = encoded.indexOf('/');
  return { kind, project: encoded.slice(0, slash), name: encoded.slice(slash + 1) };
}
