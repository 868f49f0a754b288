import { z } from 'zod';
import type pg from 'pg';
import type { Bus } from '../bus/bus.js';
import type { Metrics } from '../metrics.js';
import type { Notifier } from '../store/notifier.js';
import { problemResponse } from './problem.js';
import { PROBLEM_TYPES } from '@kumo/api';
import type { KumoRouter } from './router.js';

/**
 * /livez (200 while the process runs, whatever the store does), /readyz (200 only while the store
 * answers within 2 s and Kumo listens for its changes; else 503 `unavailable` with Retry-After) and
 * /metrics. The bus does not decide readiness: while NATS is away writes still commit (the outbox
 * keeps their nudges), so /readyz says `"bus": "reconnecting"` and stays 200, and
 * `kumo_bus_connected` is 0, for monitoring to alert on rather than a load balancer to drop every replica.
 */
export function registerSystemRoutes(
  router: KumoRouter,
  deps: {
    pool: pg.Pool;
    notifier: Pick<Notifier, 'listening'>;
    bus: Pick<Bus, 'connected'>;
    metrics: Metrics;
  },
): void {
  const health = z.object({ status: z.string() });
  const readiness = health.extend({
    bus: z
      .enum(['connected', 'reconnecting'])
      .describe(
        'The message bus: "reconnecting" while NATS is away (writes still commit; nudges wait in the outbox).',
      ),
  });
  router.add({
    method: 'get',
    path: '/livez',
    tags: ['System'],
    summary: 'The process is alive',
    access: { public: true },
    responses: { 200: { description: 'Alive', content: { 'application/json': { schema: health } } } },
    handler: (c) => c.json({ status: 'ok' }),
  });
  router.add({
    method: 'get',
    path: '/readyz',
    tags: ['System'],
    summary: 'Ready to serve: the store answers',
    access: { public: true },
    responses: {
      200: { description: 'Ready', content: { 'application/json': { schema: readiness } } },
      503: { description: 'Not ready' },
    },
    handler: async (c) => {
      const notReady = (detail: string) =>
        problemResponse({
          type: PROBLEM_TYPES.unavailable,
          title: 'Not ready',
          status: 503,
          detail,
          requestId: c.get('requestId'),
        });
      try {
        await Promise.race([
          deps.pool.query('SELECT 1'),
          new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref()),
        ]);
      } catch {
        return notReady(
          'The store (PostgreSQL) does not answer. This is temporary: Kumo keeps retrying (and restarts its embedded store); retry after the Retry-After delay, and check the store if it persists.',
        );
      }
      if (!deps.notifier.listening) {
        return notReady(
          'The store answers but Kumo is not yet listening for its changes again (watches would lag). This is temporary: retry after the Retry-After delay.',
        );
      }
      return c.json({ status: 'ok', bus: deps.bus.connected ? 'connected' : 'reconnecting' });
    },
  });
  router.add({
    method: 'get',
    path: '/metrics',
    tags: ['System'],
    summary: 'Prometheus metrics',
    access: { operator: true },
    responses: {
      200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } },
    },
    handler: async (c) => {
      deps.metrics.busConnected.set(deps.bus.connected ? 1 : 0);
      return c.text(await deps.metrics.registry.metrics(), 200, {
        'content-type': deps.metrics.registry.contentType,
      });
    },
  });
}
