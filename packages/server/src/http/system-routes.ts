import { z } from 'zod';
import type pg from 'pg';
import type { Metrics } from '../metrics.js';
import { problemResponse } from './problem.js';
import { PROBLEM_TYPES } from '@kumo/api';
import type { KumoRouter } from './router.js';

/** /livez, /readyz, /metrics and the OpenAPI document. */
export function registerSystemRoutes(router: KumoRouter, deps: { pool: pg.Pool; metrics: Metrics }): void {
  const health = z.object({ status: z.string() });
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
      200: { description: 'Ready', content: { 'application/json': { schema: health } } },
      503: { description: 'Not ready' },
    },
    handler: async (c) => {
      try {
        await Promise.race([
          deps.pool.query('SELECT 1'),
          new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref()),
        ]);
        return c.json({ status: 'ok' });
      } catch {
        return problemResponse({
          type: PROBLEM_TYPES.unavailable,
          title: 'Not ready',
          status: 503,
          detail: 'The store (PostgreSQL) does not answer. Kumo keeps retrying; check the store.',
        });
      }
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
    handler: async (c) =>
      c.text(await deps.metrics.registry.metrics(), 200, {
        'content-type': deps.metrics.registry.contentType,
      }),
  });
}
