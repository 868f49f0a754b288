import { tokenCreateSchema } from '@kumo/api';
import type { ManagedResource } from '../kind-resource.js';
import { objectFromTf } from '../kind-resource.js';
import { ApiError, type KumoApi } from '../kumo-api.js';
import { planObject, replacements } from '../plan.js';
import { type Attribute, attributesOf } from '../schema.js';
import { type TfObject, UNKNOWN } from '../values.js';

interface TokenInfo {
  id: string;
  name: string;
  prefix: string;
  role: string;
  org: string | null;
  projects: string[] | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

// A service token of an org: every field is fixed at creation (a change makes a new token).
const fields = attributesOf(tokenCreateSchema, { omit: ['service', 'user'] }).map((a) => ({
  ...a,
  forcesReplacement: true,
  ...(a.name === 'org' ? { required: true, optional: false } : {}),
  ...(a.name === 'role' ? { computed: true } : {}),
}));
const attributes: Attribute[] = [
  {
    name: 'id',
    type: 'string',
    computed: true,
    stable: true,
    description: 'The token id, as `terraform import` takes it.',
  },
  ...fields,
  {
    name: 'token',
    type: 'string',
    computed: true,
    stable: true,
    sensitive: true,
    description: 'The secret: known only to the apply that created it (null after an import).',
  },
  {
    name: 'prefix',
    type: 'string',
    computed: true,
    stable: true,
    description: 'The visible part of the secret.',
  },
  { name: 'expires_at', type: 'string', computed: true, stable: true },
];

async function find(api: KumoApi, id: string): Promise<TokenInfo | undefined> {
  const { items } = await api.request<{ items: TokenInfo[] }>('GET', '/v1/tokens');
  return items.find((t) => t.id === id && !t.revokedAt);
}

const stateOf = (t: TokenInfo, prior: TfObject | null): TfObject => ({
  id: t.id,
  name: t.name,
  org: t.org,
  role: t.role,
  projects: t.projects ? [...t.projects] : null,
  expires_in_days: prior?.expires_in_days ?? null,
  token: prior?.token ?? null,
  prefix: t.prefix,
  expires_at: t.expiresAt,
});

/** A service token of an org (POST /v1/tokens with service): for CI and other machines. */
export const serviceTokenResource: ManagedResource = {
  typeName: 'kumo_service_token',
  block: {
    description: 'A service token of an org. Every change replaces it; destroying it revokes it at once.',
    attributes,
  },
  async plan(_api, prior, proposed) {
    if (!prior) {
      const planned = planObject(attributes, proposed, null, true);
      return { planned: { ...planned, token: UNKNOWN }, requiresReplace: [], diagnostics: [] };
    }
    return {
      planned: planObject(attributes, proposed, prior, false),
      requiresReplace: replacements(attributes, prior, proposed),
      diagnostics: [],
    };
  },
  async create(api, planned) {
    const created = await api.request<TokenInfo & { token: string }>('POST', '/v1/tokens', {
      ...objectFromTf(fields, planned),
      service: true,
    });
    return { state: { ...stateOf(created, planned), token: created.token }, diagnostics: [] };
  },
  async update(_api, prior, planned) {
    // Nothing but expires_in_days' bookkeeping can change in place (everything else replaces).
    return { state: { ...prior, expires_in_days: planned.expires_in_days ?? null }, diagnostics: [] };
  },
  async delete(api, prior) {
    try {
      await api.request('DELETE', `/v1/tokens/${String(prior.id)}`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  },
  async read(api, state) {
    const token = await find(api, String(state.id));
    return token ? stateOf(token, state) : null;
  },
  importState(id) {
    return Object.fromEntries([...attributes.map((a) => [a.name, null]), ['id', id]]);
  },
};
