import { randomUUID } from 'node:crypto';
import { WEBHOOK_SIGNATURE_HEADER } from '@kumo/api';
import type pg from 'pg';
import type { Logger } from '../logger.js';
import type { Notifier } from '../store/notifier.js';
import { withTransaction } from '../store/sql.js';
import { deliveryBody } from './webhook-deliveries.js';
import type { WebhookSecrets } from './webhook-secrets.js';
import { signatureHeader } from './webhook-signature.js';
import { postToReceiver } from './receiver-post.js';

/** How deliveries are sent and retried; resolved once from the configuration. */
export interface DeliveryPolicy {
  /** Sends in flight at once per replica (at most one per webhook). */
  concurrency: number;
  /** A receiver that has not answered by then failed this attempt. */
  timeoutMs: number;
  /** Whether receivers may be at private addresses (loopback, RFC 1918, link-local, …). */
  allowPrivate: boolean;
  /** The wait after the first failure, doubling after each next one up to `maxRetryMs`. */
  firstRetryMs: number;
  maxRetryMs: number;
  /** Safety-net poll (retries fall due without a notification). */
  pollMs: number;
  userAgent: string;
}

/** How a receiver answered one attempt: error is null for a 2xx answer. */
export interface AttemptOutcome {
  status: number | null;
  error: string | null;
}

interface Claimed {
  id: string;
  webhook_uid: string;
  url: string;
  hook_project: string;
  hook_name: string;
  type: string;
  kind: string;
  project: string;
  name: string;
  payload: Record<string, unknown>;
  attempts: number;
  created_at: Date;
  give_up_at: Date;
}

/**
 * Sends pending deliveries, on every replica at once: a delivery is claimed for the length of one
 * attempt (FOR UPDATE SKIP LOCKED, then `claimed_until`), so no two replicas send it at the same
 * time, and one whose sender died is sent again once the claim lapses (at least once). Each
 * webhook has its own queue: at most one of its deliveries is in flight, and a delivery waits while
 * an earlier one of the same resource to the same webhook is Pending, so a slow or dead receiver
 * delays only itself, in order. A failed attempt is retried with backoff until `give_up_at`, then
 * the delivery is Failed.
 */
export class WebhookDeliverer {
  private running: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private notified = false;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly onNotify = () => {
    this.notified = true;
    this.wake?.();
  };

  constructor(
    private readonly pool: pg.Pool,
    private readonly secrets: WebhookSecrets,
    private readonly notifier: Notifier | undefined,
    private readonly logger: Logger,
    private readonly policy: DeliveryPolicy,
  ) {}

  start(): void {
    this.notifier?.on('kumo_webhooks', this.onNotify);
    this.running = this.loop();
  }

  /** Stops claiming; sends in flight finish (each within the timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.notifier?.off('kumo_webhooks', this.onNotify);
    this.wake?.();
    await this.running;
    await Promise.all(this.inFlight.values());
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      this.notified = false;
      let claimed: Claimed[] = [];
      try {
        claimed = await this.claim(this.policy.concurrency - this.inFlight.size);
        failures = 0;
      } catch (err) {
        failures++;
        this.logger.warn({ err: (err as Error).message }, 'claiming webhook deliveries failed; retrying');
      }
      for (const delivery of claimed) {
        const sending = this.send(delivery).finally(() => {
          this.inFlight.delete(delivery.webhook_uid);
          this.wake?.();
        });
        this.inFlight.set(delivery.webhook_uid, sending);
      }
      if (claimed.length > 0 || (this.notified && failures === 0)) continue;
      const wait = failures > 0 ? Math.min(30_000, 100 * 2 ** failures) : this.policy.pollMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Claims up to `room` deliveries that are due, each of another webhook than those in flight here. */
  private async claim(room: number): Promise<Claimed[]> {
    if (room <= 0) return [];
    return withTransaction(this.pool, async (client) => {
      const { rows } = await client.query<{ id: string; webhook_uid: string }>(
        `SELECT d.id, d.webhook_uid FROM webhook_deliveries d
          WHERE d.state = 'Pending' AND d.next_attempt_at <= now()
            AND (d.claimed_until IS NULL OR d.claimed_until < now())
            AND NOT (d.webhook_uid = ANY($1::uuid[]))
            AND EXISTS (SELECT 1 FROM secrets s WHERE s.uid = d.webhook_uid AND s.name = 'webhook-signing')
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                             WHERE e.state = 'Pending' AND e.webhook_uid = d.webhook_uid AND e.kind = d.kind
                               AND e.project = d.project AND e.name = d.name AND e.id < d.id)
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries f
                             WHERE f.state = 'Pending' AND f.webhook_uid = d.webhook_uid AND f.claimed_until > now())
          ORDER BY d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED`,
        [[...this.inFlight.keys()], room * 4],
      );
      const first = new Map<string, string>();
      for (const row of rows) if (!first.has(row.webhook_uid)) first.set(row.webhook_uid, row.id);
      const ids = [...first.values()].slice(0, room);
      if (ids.length === 0) return [];
      const claimed = await client.query<Claimed>(
        `UPDATE webhook_deliveries d
            SET claimed_until = now() + make_interval(secs => $2), attempts = d.attempts + 1
           FROM resources w
          WHERE d.id = ANY($1::bigint[]) AND w.uid = d.webhook_uid
          RETURNING d.id, d.webhook_uid, w.spec ->> 'url' AS url, w.project AS hook_project, w.name AS hook_name,
                    d.type, d.kind, d.project, d.name, d.payload, d.attempts, d.created_at, d.give_up_at`,
        [ids, claimSeconds(this.policy.timeoutMs)],
      );
      return claimed.rows;
    });
  }

  /** One attempt, and its outcome recorded. Never throws. */
  private async send(d: Claimed): Promise<void> {
    const secret = await this.secrets.read(d.webhook_uid).catch(() => undefined);
    const body = deliveryBody({
      ...d,
      id: String(d.id),
      webhook: { project: d.hook_project, name: d.hook_name },
    });
    const outcome = secret
      ? await this.attempt(d.url, secret.secret, { id: String(d.id), type: d.type }, body)
      : { status: null, error: 'the webhook has no signing secret' };
    await this.record(d, outcome.status, outcome.error).catch((err: unknown) =>
      // The claim lapses and the delivery is sent again: at least once.
      this.logger.warn(
        { err: (err as Error).message, delivery: d.id },
        'recording a webhook delivery failed',
      ),
    );
  }

  /**
   * Sends a `Ping` to the webhook now, signed like a delivery, outside its queue and its log, and
   * says how the receiver answered. Never throws.
   */
  async ping(
    webhook: { url: string; project: string; name: string },
    secret: string,
  ): Promise<AttemptOutcome> {
    const id = `ping-${randomUUID()}`;
    const body = JSON.stringify({
      id,
      webhook: { project: webhook.project, name: webhook.name },
      type: 'Ping',
      createdAt: new Date().toISOString(),
    });
    return this.attempt(webhook.url, secret, { id, type: 'Ping' }, body);
  }

  /** One signed POST: the receiver's status, and an error unless it was 2xx. Never throws. */
  private async attempt(
    url: string,
    secret: string,
    delivery: { id: string; type: string },
    body: string,
  ): Promise<AttemptOutcome> {
    try {
      const answer = await postToReceiver(
        url,
        {
          'content-type': 'application/json',
          'user-agent': this.policy.userAgent,
          'kumo-delivery': delivery.id,
          'kumo-event': delivery.type,
          [WEBHOOK_SIGNATURE_HEADER.toLowerCase()]: signatureHeader(
            secret,
            body,
            Math.floor(Date.now() / 1000),
          ),
        },
        body,
        this.policy,
      );
      const ok = answer.status >= 200 && answer.status < 300;
      return {
        status: answer.status,
        error: ok ? null : `HTTP ${answer.status}${answer.text ? `: ${answer.text.slice(0, 200)}` : ''}`,
      };
    } catch (err) {
      return { status: null, error: describeFailure(err, this.policy.timeoutMs) };
    }
  }

  private async record(d: Claimed, status: number | null, error: string | null): Promise<void> {
    if (error === null) {
      await this.pool.query(
        `UPDATE webhook_deliveries SET state = 'Succeeded', claimed_until = NULL, last_attempt_at = now(),
                last_status = $2, last_error = NULL, completed_at = now()
          WHERE id = $1 AND state = 'Pending'`,
        [d.id, status],
      );
      return;
    }
    const waitMs = Math.min(this.policy.maxRetryMs, this.policy.firstRetryMs * 2 ** (d.attempts - 1));
    const jittered = waitMs * (0.9 + Math.random() * 0.2);
    await this.pool.query(
      `UPDATE webhook_deliveries
          SET claimed_until = NULL, last_attempt_at = now(), last_status = $2, last_error = $3,
              next_attempt_at = now() + make_interval(secs => $4),
              state = CASE WHEN now() + make_interval(secs => $4) > give_up_at THEN 'Failed' ELSE 'Pending' END,
              completed_at = CASE WHEN now() + make_interval(secs => $4) > give_up_at THEN now() END
        WHERE id = $1 AND state = 'Pending'`,
      [d.id, status, error.slice(0, 1000), jittered / 1000],
    );
    // A retry due before the next poll is claimed when it falls due, not at the poll.
    if (jittered < this.policy.pollMs) setTimeout(() => this.wake?.(), jittered).unref();
  }
}

/**
 * How long a claim lasts: the attempt's timeout, and as long again and 5 s for recording its
 * outcome. A sender that died is replaced after this (one that is merely that slow to record may
 * see its delivery sent again: at least once).
 */
export function claimSeconds(timeoutMs: number): number {
  return (2 * timeoutMs + 5000) / 1000;
}

function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as Error;
  if (e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  return e.message;
}
