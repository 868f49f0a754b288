import type pg from 'pg';
import type { KumoConfig } from '../config.js';
import { Periodic } from '../controllers/runtime/periodic.js';
import type { Logger } from '../logger.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { EventLog } from '../store/event-log.js';
import type { Notifier } from '../store/notifier.js';
import { DeliveryLog } from './webhook-deliveries.js';
import { type AttemptOutcome, WebhookDeliverer } from './webhook-deliverer.js';
import { WebhookFanout } from './webhook-fanout.js';
import { WebhookSecrets } from './webhook-secrets.js';

/** Safety-net poll of the fan-out and the deliverer when no notification arrives. */
const POLL_MS = 1000;
const PRUNE_EVERY_MS = 3600_000;
const EVENT_LOG_RETENTION_MS = 24 * 3600_000;
const DELIVERY_LOG_RETENTION_MS = 30 * 86_400_000;

/**
 * Everything webhooks need on a control-plane replica: the fan-out of changes and events into
 * deliveries (woken by every write), the deliverer, and pruning of the logs. Safe on any number
 * of replicas on one store. `start` and `stop` once each.
 */
export class WebhookPipeline {
  readonly secrets: WebhookSecrets;
  readonly deliveries: DeliveryLog;
  readonly eventLog: EventLog;
  private readonly fanout: WebhookFanout;
  private readonly deliverer: WebhookDeliverer;
  private readonly prune: Periodic;
  private stopped = false;
  private dirty = true;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private readonly onNotify = () => {
    this.dirty = true;
    this.wake?.();
  };

  constructor(
    pool: pg.Pool,
    box: SecretBox,
    private readonly notifier: Notifier,
    private readonly logger: Logger,
    config: KumoConfig['webhooks'] & { userAgent: string },
  ) {
    this.secrets = new WebhookSecrets(pool, box);
    this.deliveries = new DeliveryLog(pool, config.giveUpMs);
    this.eventLog = new EventLog(pool);
    this.fanout = new WebhookFanout(pool, config.giveUpMs);
    this.deliverer = new WebhookDeliverer(pool, this.secrets, notifier, logger, {
      ...config,
      pollMs: POLL_MS,
    });
    this.prune = new Periodic(
      () =>
        this.fanout.prune({ eventLogMs: EVENT_LOG_RETENTION_MS, deliveryLogMs: DELIVERY_LOG_RETENTION_MS }),
      PRUNE_EVERY_MS,
      (err) => logger.warn({ err: String(err) }, 'pruning the webhook logs failed'),
    );
  }

  /** A signed `Ping` to the webhook now (see WebhookDeliverer.ping); undefined when it has no secret yet. */
  async ping(webhook: {
    uid: string;
    url: string;
    project: string;
    name: string;
  }): Promise<AttemptOutcome | undefined> {
    const secret = await this.secrets.read(webhook.uid);
    return secret && this.deliverer.ping(webhook, secret.secret);
  }

  start(): void {
    this.notifier.on('kumo_changes', this.onNotify);
    this.notifier.on('kumo_webhooks', this.onNotify);
    this.running = this.fanOut();
    this.deliverer.start();
    this.prune.start();
  }

  /** Stops fanning out and claiming; sends in flight finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.notifier.off('kumo_changes', this.onNotify);
    this.notifier.off('kumo_webhooks', this.onNotify);
    this.wake?.();
    await Promise.all([this.running, this.deliverer.stop(), this.prune.stop()]);
  }

  private async fanOut(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let more = false;
      if (this.dirty) {
        this.dirty = false;
        try {
          more = (await this.fanout.pass()) > 0;
          failures = 0;
        } catch (err) {
          failures++;
          this.dirty = true;
          this.logger.warn({ err: (err as Error).message }, 'webhook fan-out failed; retrying');
        }
      }
      if (more) continue;
      const wait = failures > 0 ? Math.min(30_000, 100 * 2 ** failures) : POLL_MS;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.dirty = true;
          resolve();
        }, wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
