import { describe, expect, it } from 'vitest';
import { KINDS } from '@kumo/api';
import { z } from 'zod';
import { KumoRouter } from './router.js';

describe('KumoRouter', () => {
  it('requires every route to declare its access, and records it in the route table', () => {
    const router = new KumoRouter({} as never);
    router.add({
      method: 'get',
      path: '/v1/things',
      access: { permission: 'resources.read', in: { projectParam: 'project' } },
      responses: { 200: { description: 'ok', content: { 'application/json': { schema: z.object({}) } } } },
      handler: (c) => c.json({}),
    });
    expect(router.table).toEqual([
      {
        method: 'GET',
        path: '/v1/things',
        access: { permission: 'resources.read', in: { projectParam: 'project' } },
      },
    ]);
  });
});

describe('the served API', () => {
  it('has no route outside the access table (a route cannot bypass authorisation)', async () => {
    // Build the real app's route table without a store: only the registration is exercised.
    const { createApp } = await import('./app.js');
    const router = createApp({
      bodyLimitBytes: 1024,
      version: 'test',
      rateLimit: { perSecond: 1, burst: 1 },
    } as never);
    const declared = new Set(router.table.map((r) => `${r.method} ${r.path.replace(/\{(\w+)\}/g, ':$1')}`));
    // The service broker's routes authenticate with the broker credential themselves; every one of
    // them refusing a request without it is tested in osb/osb-routes.test.ts.
    const served = router.app.routes
      .filter((r) => r.method !== 'ALL') // middleware
      .filter((r) => !r.path.startsWith('/osb/'))
      .map((r) => `${r.method} ${r.path}`);
    expect(served.length).toBeGreaterThan(KINDS.length * 9);
    expect(served.filter((r) => !declared.has(r))).toEqual([]);
  });
});
