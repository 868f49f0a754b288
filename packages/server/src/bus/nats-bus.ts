import { randomBytes } from 'node:crypto';
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  JetStreamApiError,
  type JetStreamManager,
  type JsMsg,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node';
import type { Logger } from '../logger.js';
import type { Bus, BusHandler, BusMessage } from './bus.js';

export const NUDGE_STREAM = 'KUMO_NUDGES';
/** The subject token (and consumer target) of messages for no target: the control plane's. */
export const NO_TARGET = '_';

type ConsumerSettings = Partial<ConsumerConfig> & { name: string };

/** Deliveries of a message whose handlers keep rejecting before the server drops it. */
const MAX_DELIVER = 10;
const MAX_RETRY_DELAY_MS = 60_000;
/** Bounds each JetStream API request, so close() during an outage does not wait long. */
const API_TIMEOUT_MS = 5000;
/** Error codes of the JetStream API: a stream, or a consumer, exists with another configuration. */
const STREAM_NAME_IN_USE = 10058;
const CONSUMER_ALREADY_EXISTS = 10148;

export interface NatsBusOptions {
  /** NATS server URL(s), comma-separated. May carry credentials: it is never logged. */
  url: string;
  logger: Logger;
  consumer: NatsConsumerOptions;
  /** How long publish waits for the server's acknowledgement before it rejects. Default: 5000 ms. */
  publishTimeoutMs?: number;
  /** Delay before a rejected message comes again; doubles per delivery, at most 1 min. Default: 1000 ms. */
  retryDelayMs?: number;
}

export interface NatsConsumerOptions {
  /**
   * A durable consumer's name: the same name resumes where the last process left off. For a
   * non-durable consumer only a prefix; a random suffix keeps two replicas from sharing one.
   */
  name: string;
  /**
   * true (an agent): the consumer outlives the process; one that was away gets, on return, what
   * was published meanwhile (all the stream still holds, 24 h, when first created).
   * false (a control-plane replica): sees what is published from connect on; the server deletes
   * the consumer 5 minutes after the process is gone.
   */
  durable: boolean;
  /**
   * Only messages for these targets (an empty list: none; `_`, NO_TARGET: those for no target — the
   * control plane's kinds). Absent: every message, with a target or not.
   */
  targets?: string[];
}

/**
 * The Bus on NATS JetStream, for more than one node. Messages are kept for 24 h in the stream
 * KUMO_NUDGES under `kumo.nudges.<target or "_">.<kind>`; publish resolves once the server has
 * stored one (a second publish of the same id within 2 minutes is dropped as a duplicate).
 *
 * Each NatsBus reads through one consumer. Pulling starts at the first subscribe, so subscribe
 * every kind in the same tick: a message of a kind nobody subscribed to is acknowledged and gone
 * for this consumer (the periodic resync covers it). Messages are dispatched one at a time;
 * handlers should return quickly (a controller's only enqueues). Survives server restarts: the
 * client reconnects for ever, and a consumer the server lost is created again.
 */
export class NatsBus implements Bus {
  private readonly handlers = new Map<string, Set<BusHandler>>();
  private readonly targets: ReadonlySet<string> | undefined;
  private readonly publishTimeoutMs: number;
  private readonly retryDelayMs: number;
  private consuming: Promise<void> | undefined;
  private messages: ConsumerMessages | undefined;
  private closing: Promise<void> | undefined;
  private online = true;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly consumer: ConsumerSettings,
    private readonly logger: Logger,
    options: NatsBusOptions,
  ) {
    this.targets = options.consumer.targets && new Set(options.consumer.targets);
    this.publishTimeoutMs = options.publishTimeoutMs ?? 5000;
    this.retryDelayMs = options.retryDelayMs ?? 1000;
    void this.watchConnection();
  }

  /** Connects, creates or updates the stream and the consumer. Rejects if the server is unreachable. */
  static async connect(options: NatsBusOptions): Promise<NatsBus> {
    options.consumer.targets?.forEach((t) => t === NO_TARGET || token(t, 'target'));
    const nc = await connect({
      servers: options.url.split(',').map((s) => s.trim()),
      name: `kumo-${options.consumer.name}`,
      maxReconnectAttempts: -1,
    });
    try {
      const jsm = await jetstreamManager(nc, { timeout: API_TIMEOUT_MS });
      await ensureStream(jsm);
      const consumer = consumerConfig(options.consumer);
      await ensureConsumer(jsm, consumer);
      return new NatsBus(nc, jsm, jsm.jetstream(), consumer, options.logger, options);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  get connected(): boolean {
    return this.online && !this.closing && !this.nc.isClosed();
  }

  async publish(message: BusMessage): Promise<void> {
    if (this.closing) throw new Error('the bus is closed');
    await this.js.publish(subjectOf(message), JSON.stringify(message), {
      msgID: message.id,
      timeout: this.publishTimeoutMs,
    });
  }

  subscribe(kind: string, handler: BusHandler): () => void {
    const set = this.handlers.get(kind) ?? new Set();
    set.add(handler);
    this.handlers.set(kind, set);
    if (!this.closing) this.consuming ??= this.consume();
    return () => set.delete(handler);
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    await this.messages?.close().catch(() => undefined);
    await this.consuming;
    this.handlers.clear();
    if (this.online && !this.consumer.durable_name) {
      await this.jsm.consumers.delete(NUDGE_STREAM, this.consumer.name).catch(() => undefined);
    }
    await (this.online ? this.nc.drain() : this.nc.close()).catch(() => this.nc.close());
  }

  private async consume(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve)); // the caller's other subscribes first
    while (!this.closing) {
      try {
        const consumer = await this.js.consumers.get(NUDGE_STREAM, this.consumer.name);
        const messages = await consumer.consume();
        this.messages = messages;
        if (this.closing) await messages.close();
        void this.watchConsumer(messages);
        for await (const msg of messages) await this.dispatch(msg);
        if (!this.closing) throw new Error('consumption ended');
      } catch (err) {
        if (this.closing) return;
        this.logger.warn({ err: String(err) }, 'bus consumption failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if (!this.closing) await ensureConsumer(this.jsm, this.consumer).catch(() => undefined);
      }
    }
  }

  /** Acks when every handler succeeded (or none wants it); otherwise asks for it again later. */
  private async dispatch(msg: JsMsg): Promise<void> {
    let message: BusMessage;
    try {
      message = msg.json<BusMessage>();
    } catch {
      this.logger.warn({ subject: msg.subject }, 'dropping a bus message that is not JSON');
      return msg.term();
    }
    if (this.targets && !this.targets.has(message.target ?? NO_TARGET)) return msg.ack();
    const handlers = [...(this.handlers.get(message.kind) ?? [])];
    const results = await Promise.allSettled(handlers.map(async (handle) => handle(message)));
    const failure = results.find((r) => r.status === 'rejected');
    if (!failure) return msg.ack();
    if (this.closing) return msg.nak();
    const attempt = msg.info.deliveryCount;
    if (attempt >= MAX_DELIVER) {
      this.logger.warn(
        { err: String(failure.reason), message },
        'bus handler kept failing; dropping the nudge (resync will catch up)',
      );
      return msg.term();
    }
    msg.nak(Math.min(MAX_RETRY_DELAY_MS, this.retryDelayMs * 2 ** (attempt - 1)));
  }

  /**
   * A consumer can vanish (a non-durable one after a long outage, or one deleted by hand): end this
   * round of consumption, and consume() creates it again.
   */
  private async watchConsumer(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type === 'consumer_not_found' || status.type === 'consumer_deleted') {
        messages.stop(new Error(`the bus consumer ${this.consumer.name} is gone`));
        return;
      }
    }
  }

  /** Logs connection changes; never the server address, which may carry credentials. */
  private async watchConnection(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.online = false;
        this.logger.warn('lost the NATS connection; reconnecting');
      } else if (status.type === 'reconnect') {
        this.online = true;
        this.logger.info('reconnected to NATS');
      } else if (status.type === 'error') {
        this.logger.warn({ err: status.error.message }, 'NATS reported an error');
      }
    }
  }
}

function subjectOf(message: BusMessage): string {
  const target = message.target === undefined ? NO_TARGET : token(message.target, 'target');
  return `kumo.nudges.${target}.${token(message.kind, 'kind')}`;
}

/** Targets are DNS labels and kinds identifiers; anything else would break the subject. */
function token(value: string, what: string): string {
  if (!/^[A-Za-z0-9-]+$/.test(value))
    throw new Error(`bus ${what} ${JSON.stringify(value)} is not a subject token`);
  return value;
}

/**
 * NATS 2.9 allows one filter per consumer: a single target is filtered by the server, several by
 * this process (the consumer reads everything and acks what is not for it).
 */
function consumerConfig(options: NatsConsumerOptions): ConsumerSettings {
  const targets = options.targets ?? [];
  const common = {
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(30_000),
    max_deliver: MAX_DELIVER,
    filter_subject: targets.length === 1 ? `kumo.nudges.${targets[0]}.>` : 'kumo.nudges.>',
  };
  if (options.durable) {
    return { ...common, name: options.name, durable_name: options.name, deliver_policy: DeliverPolicy.All };
  }
  return {
    ...common,
    name: `${options.name}-${randomBytes(6).toString('hex')}`,
    deliver_policy: DeliverPolicy.New,
    inactive_threshold: nanos(5 * 60_000),
  };
}

/** Creates the stream, or brings its settings up to date; safe when several processes race. */
async function ensureStream(jsm: JetStreamManager): Promise<void> {
  const config = {
    subjects: ['kumo.nudges.>'],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(24 * 3600_000),
    duplicate_window: nanos(2 * 60_000),
  };
  try {
    await jsm.streams.add({ name: NUDGE_STREAM, ...config });
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE)) throw err;
    await jsm.streams.update(NUDGE_STREAM, config);
  }
}

/** Creates the consumer, or updates it (its targets may have changed). Idempotent. */
async function ensureConsumer(jsm: JetStreamManager, config: ConsumerSettings): Promise<void> {
  try {
    await jsm.consumers.add(NUDGE_STREAM, config);
  } catch (err) {
    // Servers before 2.10 create-or-update; later ones refuse a changed config on create.
    if (!(err instanceof JetStreamApiError && err.code === CONSUMER_ALREADY_EXISTS)) throw err;
    const { filter_subject, ack_wait, max_deliver, inactive_threshold } = config;
    await jsm.consumers.update(NUDGE_STREAM, config.name, {
      filter_subject,
      ack_wait,
      max_deliver,
      inactive_threshold,
    });
  }
}
