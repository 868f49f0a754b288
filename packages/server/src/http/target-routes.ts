import { nameSchema, problemSchema } from '@kumo/api';
import type pg from 'pg';
import { z } from 'zod';
import type { TokenStore } from '../auth/token-store.js';
import { NotFoundError } from '../errors.js';
import { recordAudit } from '../store/audit-log.js';
import type { ResourceStore } from '../store/resource-store.js';
import { writeContext } from './request-context.js';
import { type KumoRouter, validated } from './router.js';

export interface TargetRouteDeps {
  store: ResourceStore;
  tokens: TokenStore;
  pool: pg.Pool;
}

const problem = { content: { 'application/problem+json': { schema: problemSchema } } };
const agentToken = z
  .object({
    id: z.string(),
    token: z.string().meta({ description: 'The secret: shown in this answer only, stored hashed.' }),
    target: z.string(),
  })
  .meta({ id: 'AgentToken' });

/** Credentials for a target's agent. */
export function registerTargetRoutes(router: KumoRouter, deps: TargetRouteDeps): void {
  router.add({
    method: 'post',
    path: '/v1/targets/{name}/agent-tokens',
    tags: ['Target'],
    summary:
      "Create a token for the target's agent: it may call the agent API of this target and nothing else",
    description:
      'Give it to `kumo agent --target NAME` (KUMO_AGENT_TOKEN). Revoke it with DELETE /v1/tokens/{id}; an agent without a valid token stops acting for its target when its lease runs out.',
    access: { operator: true },
    request: { params: z.object({ name: nameSchema }) },
    responses: {
      201: { description: 'The token', content: { 'application/json': { schema: agentToken } } },
      404: { description: 'No such target', ...problem },
    },
    handler: async (c) => {
      const { name } = validated<{ name: string }>(c, 'param');
      if (!(await deps.store.get({ kind: 'Target', project: '', name })))
        throw new NotFoundError(
          `Target "${name}" does not exist. Create it first: kumo target create ${name} --driver local`,
        );
      const ctx = writeContext(c);
      const created = await deps.tokens.create({
        name: `agent-${name}`,
        principal: `agent:${name}`,
        role: 'agent',
        target: name,
        createdBy: ctx.actor,
      });
      await recordAudit(deps.pool, ctx, { action: 'create-agent-token', kind: 'Target', project: '', name });
      c.header('cache-control', 'no-store');
      return c.json({ id: created.id, token: created.token, target: name }, 201);
    },
  });
}
