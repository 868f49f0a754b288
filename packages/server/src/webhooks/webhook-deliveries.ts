import type { WebhookDelivery } from '@kumo/api';
import type pg from 'pg';
import { NotFoundError } from '../errors.js';

/**
 * The body of a delivery, the same bytes on every attempt: its id (a receiver deduplicates by it),
 * the webhook, what happened (`type`), to which resource, and the object as written (a change)
 * or the event.
 */
export function deliveryBody(d: {
  id: string;
  webhook: { project: string; name: string };
  type: string;
  kind: string;
  project: string;
  name: string;
  payload: Record<string, unknown>;
  created_at: Date;
}): string {
  return JSON.stringify({
    id: d.id,
    webhook: d.webhook,
    type: d.type,
    createdAt: d.created_at.toISOString(),
    resource: { kind: d.kind, project: d.project, name: d.name },
    ...d.payload,
  });
}

interface DeliveryRow {
  id: string;
  type: WebhookDelivery['type'];
  kind: string;
  project: string;
  name: string;
  state: WebhookDelivery['state'];
  attempts: number;
  created_at: Date;
  last_attempt_at: Date | null;
  next_attempt_at: Date;
  last_status: number | null;
  last_error: string | null;
  completed_at: Date | null;
}

/** A webhook's delivery log: what was sent, how it went, and sending one again. */
export class DeliveryLog {
  constructor(
    private readonly pool: pg.Pool,
    /** How long a redelivered delivery is tried. */
    private readonly giveUpMs: number,
  ) {}

  /** The newest deliveries of a webhook first (by its uid), optionally only those in one state. */
  async list(
    webhookUid: string,
    options: { limit: number; state?: WebhookDelivery['state'] },
  ): Promise<WebhookDelivery[]> {
    const { rows } = await this.pool.query<DeliveryRow>(
      `SELECT * FROM webhook_deliveries WHERE webhook_uid = $1 AND ($2::text IS NULL OR state = $2)
        ORDER BY id DESC LIMIT $3`,
      [webhookUid, options.state ?? null, options.limit],
    );
    return rows.map(toDelivery);
  }

  /**
   * Sends a delivery again, now, and for as long as a new one is tried: Pending with its attempts
   * kept. Later deliveries of the same resource wait for it again. Throws NotFoundError when the
   * webhook has no such delivery.
   */
  async redeliver(webhookUid: string, id: string): Promise<WebhookDelivery> {
    const { rows } = await this.pool.query<DeliveryRow>(
      `UPDATE webhook_deliveries
          SET state = 'Pending', next_attempt_at = now(), completed_at = NULL,
              give_up_at = GREATEST(give_up_at, now() + make_interval(secs => $3))
        WHERE webhook_uid = $1 AND id = $2
        RETURNING *`,
      [webhookUid, id, this.giveUpMs / 1000],
    );
    if (!rows[0]) throw new NotFoundError(`The webhook has no delivery ${id}. List them with …/deliveries.`);
    await this.pool.query("SELECT pg_notify('kumo_webhooks', '')");
    return toDelivery(rows[0]);
  }
}

function toDelivery(r: DeliveryRow): WebhookDelivery {
  return {
    id: String(r.id),
    type: r.type,
    resource: { kind: r.kind, project: r.project, name: r.name },
    state: r.state,
    attempts: r.attempts,
    createdAt: r.created_at.toISOString(),
    lastAttemptAt: r.last_attempt_at?.toISOString() ?? null,
    nextAttemptAt: r.state === 'Pending' ? r.next_attempt_at.toISOString() : null,
    lastStatus: r.last_status,
    lastError: r.last_error,
    completedAt: r.completed_at?.toISOString() ?? null,
  };
}
