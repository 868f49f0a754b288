import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { CrashPoints } from '../faults/crash-points.js';
import { writeFileDurably } from '../system/durable-file.js';
import { type RecorderSnapshot, type UsageSample, UsageRecorder } from './usage-recorder.js';

/** Where reported samples go: the control plane's usage ledger (AgentClient.reportUsage). */
export type UsageSink = (samples: UsageSample[]) => Promise<void>;

export interface UsageReporterOptions {
  /** The agent's journal file (its data directory): the open intervals and the unacknowledged samples. */
  journal: string;
  sink: UsageSink;
  logger: Logger;
  crash: CrashPoints;
  /** How often usage is cut, saved and sent. Default 60 s. */
  everyMs?: number;
  /** Now, in epoch seconds (tests pass their own clock). */
  now?: () => number;
}

/** Samples per report: a backlog after a long outage goes out in pieces the API accepts. */
const BATCH = 500;

/**
 * Saves and sends the agent's usage: every minute it cuts the recorder at the current second,
 * writes the journal (atomically) and then sends the outbox, forgetting each batch only once it is
 * acknowledged and the journal says so; then the quarter-hours still running, as far as they got. A crash at any point loses at most the seconds since the
 * last save (they are missing, not guessed) and at worst sends a batch again, which the ledger
 * counts once (docs/billing.md).
 */
export class UsageReporter {
  readonly recorder: UsageRecorder;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly now: () => number;

  private constructor(
    private readonly options: UsageReporterOptions,
    snapshot: RecorderSnapshot | undefined,
  ) {
    this.recorder = new UsageRecorder(snapshot);
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Loads the journal (a missing one is a first start; an unreadable one is set aside and said). */
  static async open(options: UsageReporterOptions): Promise<UsageReporter> {
    const text = await readFile(options.journal, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    let snapshot: RecorderSnapshot | undefined;
    try {
      snapshot = text === undefined ? undefined : (JSON.parse(text) as RecorderSnapshot);
    } catch (err) {
      options.logger.error(
        { journal: options.journal, err: (err as Error).message },
        'usage journal unreadable: starting a new one; the usage it held is missing',
      );
    }
    return new UsageReporter(options, snapshot);
  }

  start(): void {
    const every = this.options.everyMs ?? 60_000;
    this.timer = setInterval(() => void this.flush(), every);
    this.timer.unref();
  }

  /**
   * Cuts, saves and sends now, after any flush already running (whose cut may predate what the
   * caller just recorded, such as a deletion). Never rejects: what is not sent waits in the journal.
   */
  flush(): Promise<void> {
    this.queue = this.queue.then(() => this.flushOnce());
    return this.queue;
  }

  /** A last flush at a clean stop. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async flushOnce(): Promise<void> {
    const { journal, sink, crash, logger } = this.options;
    try {
      await writeFileDurably(journal, JSON.stringify(this.recorder.cut(this.now())));
      crash.reach('usage.journal-saved');
      for (;;) {
        const batch = this.recorder.pending().slice(0, BATCH);
        if (batch.length === 0) break;
        await sink(batch);
        crash.reach('usage.reported');
        await writeFileDurably(journal, JSON.stringify(this.recorder.acknowledged(batch)));
      }
      // The quarter-hours still running, as far as they got: the month-to-date cost is live.
      const running = this.recorder.running();
      for (let i = 0; i < running.length; i += BATCH) await sink(running.slice(i, i + BATCH));
    } catch (err) {
      // Kept in the journal: the next flush sends it again.
      logger.warn({ err: (err as Error).message }, 'usage not reported yet; will retry');
    }
  }
}
