import { nameSchema, problemSchema, projectKind, webhookDeliverySchema, webhookKind } from '@kumo/api';
import { streamSSE } from 'hono/streaming';
import type pg from 'pg';
import { z } from 'zod';
import { ConflictError } from '../errors.js';
import type { ResourceService } from '../resources/resource-service.js';
import { recordAudit } from '../store/audit-log.js';
import type { EventLog } from '../store/event-log.js';
import type { Notifier } from '../store/notifier.js';
import { withTransaction } from '../store/sql.js';
import type { DeliveryLog } from '../webhooks/webhook-deliveries.js';
import type { WebhookSecrets } from '../webhooks/webhook-secrets.js';
import { toProblem } from './problem.js';
import { writeContext } from './request-context.js';
import { type AppContext, type KumoRouter, validated } from './router.js';

export interface WebhookRouteDeps {
  pool: pg.Pool;
  service: ResourceService;
  secrets: WebhookSecrets;
  deliveries: DeliveryLog;
  eventLog: EventLog;
  notifier: Notifier;
  streamRecheckMs: number;
  /** Sends a signed Ping now; undefined when the webhook has no secret yet. */
  ping: (webhook: {
    uid: string;
    url: string;
    project: string;
    name: string;
  }) => Promise<{ status: number | null; error: string | null } | undefined>;
}

const problem = { content: { 'application/problem+json': { schema: problemSchema } } };
const problems = {
  404: { description: 'Not found', ...problem },
  422: { description: 'Invalid', ...problem },
};
const hook = '/v1/projects/{project}/webhooks/{name}';
const hookParams = z.object({ project: nameSchema, name: nameSchema });
const deliveryId = z
  .string()
  .regex(/^\d{1,18}$/, { message: 'must be a delivery id (digits)' })
  .meta({ description: 'A delivery id, as the delivery log shows it.' });
const eventSchema = z
  .object({
    id: z.string(),
    involvedObject: z.object({ kind: z.string(), project: z.string(), name: z.string() }),
    type: z.enum(['Normal', 'Warning']),
    reason: z.string(),
    message: z.string(),
    count: z.number().int(),
    firstTimestamp: z.string(),
    lastTimestamp: z.string(),
  })
  .meta({ id: 'ProjectEvent' });
const KEEPALIVE_MS = 15_000;
const EVENT_POLL_MS = 1000;

/** A webhook's secret and delivery log, and the event stream of a whole project (docs/webhooks.md). */
export function registerWebhookRoutes(router: KumoRouter, deps: WebhookRouteDeps): void {
  const webhookOf = (c: AppContext) => {
    const p = validated<{ project: string; name: string }>(c, 'param');
    return deps.service.get(webhookKind, { kind: 'Webhook', project: p.project, name: p.name });
  };

  router.add({
    method: 'post',
    path: `${hook}/secret/rotate`,
    tags: ['Webhook'],
    summary: 'Make a new signing secret (the first, or replacing the old one at once) and show it, once',
    description:
      'The only answer that carries the secret (Cache-Control: no-store); Kumo keeps it encrypted. Deliveries wait until a webhook has one. Audited.',
    access: { permission: 'webhooks.write', in: { projectParam: 'project' } },
    request: { params: hookParams },
    responses: {
      200: {
        description: 'The new secret',
        content: {
          'application/json': {
            schema: z.object({ secret: z.string(), version: z.number().int() }).meta({ id: 'WebhookSecret' }),
          },
        },
      },
      ...problems,
    },
    handler: async (c) => {
      const webhook = await webhookOf(c);
      const { name, project = '' } = webhook.metadata;
      const made = await withTransaction(deps.pool, async (client) => {
        const secret = await deps.secrets.rotate(webhook.metadata.uid, client);
        await recordAudit(client, writeContext(c), {
          action: 'rotate-secret',
          kind: 'Webhook',
          project,
          name,
        });
        // Its status shows the new version: wake its reconciler as a change would.
        await client.query(
          `INSERT INTO outbox (kind, project, name, generation, resource_version, action) VALUES ('Webhook', $1, $2, $3, 0, 'rotate-secret')`,
          [project, name, webhook.metadata.generation],
        );
        await client.query(`SELECT pg_notify('kumo_outbox', ''), pg_notify('kumo_webhooks', '')`);
        return secret;
      });
      c.header('cache-control', 'no-store');
      return c.json({ secret: made.secret, version: made.version });
    },
  });

  router.add({
    method: 'post',
    path: `${hook}/ping`,
    tags: ['Webhook'],
    summary: 'Send a signed Ping to the webhook now and say how its receiver answered',
    description:
      'Body `{"id": "ping-…", "webhook": {…}, "type": "Ping", "createdAt": "…"}`, signed like every delivery; outside the queue and the delivery log, not retried. 409 while the webhook has no secret.',
    access: { permission: 'webhooks.write', in: { projectParam: 'project' } },
    request: { params: hookParams },
    responses: {
      200: {
        description: "The receiver's answer",
        content: {
          'application/json': {
            schema: z
              .object({
                ok: z.boolean(),
                status: z.number().int().nullable(),
                error: z.string().nullable(),
              })
              .meta({ id: 'WebhookPing' }),
          },
        },
      },
      409: { description: 'No signing secret yet', ...problem },
      ...problems,
    },
    handler: async (c) => {
      const webhook = await webhookOf(c);
      const { name, project = '', uid } = webhook.metadata;
      const outcome = await deps.ping({ uid, url: (webhook.spec as { url: string }).url, project, name });
      if (!outcome)
        throw new ConflictError(
          `Webhook ${name} has no signing secret yet: make one first (POST …/webhooks/${name}/secret/rotate, kumo webhook rotate-secret ${name}).`,
        );
      return c.json({ ok: outcome.error === null, ...outcome });
    },
  });

  router.add({
    method: 'get',
    path: `${hook}/deliveries`,
    tags: ['Webhook'],
    summary: "A webhook's delivery log, newest first",
    access: { permission: 'webhooks.read', in: { projectParam: 'project' } },
    request: {
      params: hookParams,
      query: z.strictObject({
        state: z.enum(['Pending', 'Succeeded', 'Failed']).optional(),
        limit: z.coerce.number().int().min(1).max(500).default(100),
      }),
    },
    responses: {
      200: {
        description: 'Deliveries',
        content: { 'application/json': { schema: z.object({ items: z.array(webhookDeliverySchema) }) } },
      },
      ...problems,
    },
    handler: async (c) => {
      const webhook = await webhookOf(c);
      const q = validated<{ state?: 'Pending' | 'Succeeded' | 'Failed'; limit: number }>(c, 'query');
      return c.json({ items: await deps.deliveries.list(webhook.metadata.uid, q) });
    },
  });

  router.add({
    method: 'post',
    path: `${hook}/deliveries/{id}/redeliver`,
    tags: ['Webhook'],
    summary: 'Send a delivery again, now (and retry it for as long as a new one)',
    access: { permission: 'webhooks.write', in: { projectParam: 'project' } },
    request: { params: hookParams.extend({ id: deliveryId }) },
    responses: {
      200: {
        description: 'The delivery, Pending again',
        content: { 'application/json': { schema: webhookDeliverySchema } },
      },
      ...problems,
    },
    handler: async (c) => {
      const webhook = await webhookOf(c);
      const { id } = validated<{ id: string }>(c, 'param');
      const { name, project = '' } = webhook.metadata;
      const delivery = await deps.deliveries.redeliver(webhook.metadata.uid, id);
      await recordAudit(deps.pool, writeContext(c), { action: 'redeliver', kind: 'Webhook', project, name });
      return c.json(delivery);
    },
  });

  router.add({
    method: 'get',
    path: '/v1/projects/{project}/event-log',
    tags: ['Project'],
    summary: 'The events of everything in a project, oldest first; with watch=true a stream of new ones',
    description:
      'Without watch: the latest events (`limit`) and `after`, where a watch goes on from. With watch=true: text/event-stream, `event: Normal|Warning`, `id:` the event id, `data:` the event; from `after` (or Last-Event-ID), else from now. Kept for 24 hours.',
    access: { permission: 'resources.read', in: { projectParam: 'project' } },
    request: {
      params: z.object({ project: nameSchema }),
      query: z.strictObject({
        watch: z.enum(['true', 'false', '1', '0']).optional(),
        after: z
          .string()
          .regex(/^\d{1,18}$/, { message: 'must be an event id (digits)' })
          .optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
      }),
    },
    responses: {
      200: {
        description: 'Events, or a text/event-stream of them',
        content: {
          'application/json': {
            schema: z.object({ items: z.array(eventSchema), after: z.string() }),
          },
          'text/event-stream': { schema: z.string() },
        },
      },
      ...problems,
    },
    handler: async (c) => {
      const { project } = validated<{ project: string }>(c, 'param');
      await deps.service.get(projectKind, { kind: 'Project', project: '', name: project });
      const q = validated<{ watch?: string; after?: string; limit: number }>(c, 'query');
      if (q.watch !== 'true' && q.watch !== '1') return c.json(await deps.eventLog.latest(project, q.limit));
      const lastEventId = c.req.header('last-event-id');
      const from =
        q.after ??
        (lastEventId && /^\d{1,18}$/.test(lastEventId)
          ? lastEventId
          : (await deps.eventLog.latest(project, 1)).after);
      return streamEvents(c, deps, project, from);
    },
  });
}

/** Follows a project's events until the client goes, or its token may no longer read them. */
function streamEvents(c: AppContext, deps: WebhookRouteDeps, project: string, from: string): Response {
  const next = deps.eventLog.follow(project, from);
  return streamSSE(c, async (stream) => {
    let wake: (() => void) | undefined;
    const onNotify = () => wake?.();
    deps.notifier.on('kumo_webhooks', onNotify);
    stream.onAbort(() => wake?.());
    const keepalive = setInterval(() => void stream.write(': keep-alive\n\n'), KEEPALIVE_MS);
    let refused: unknown;
    const rechecks = setInterval(() => {
      c.get('recheckAccess')().catch((err: unknown) => {
        refused = err;
        wake?.();
      });
    }, deps.streamRecheckMs);
    try {
      while (!stream.aborted) {
        if (refused) throw refused;
        for (const event of await next())
          await stream.writeSSE({ event: event.type, id: event.id, data: JSON.stringify(event) });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, EVENT_POLL_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    } catch (err) {
      if (!stream.aborted)
        await stream.writeSSE({ event: 'ERROR', data: JSON.stringify(toProblem(err, c.get('requestId'))) });
    } finally {
      clearInterval(keepalive);
      clearInterval(rechecks);
      deps.notifier.off('kumo_webhooks', onNotify);
    }
  });
}
