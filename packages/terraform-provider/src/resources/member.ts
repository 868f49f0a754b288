import { memberPutSchema } from '@kumo/api';
import type { ManagedResource } from '../kind-resource.js';
import { objectFromTf, objectToTf } from '../kind-resource.js';
import { ApiError, type KumoApi } from '../kumo-api.js';
import { configurableDiffers, planObject, replacements } from '../plan.js';
import { type Attribute, attributesOf } from '../schema.js';
import type { TfObject } from '../values.js';

interface Member {
  org: string;
  user: string;
  role: string;
  projects: string[] | null;
}

const fields = attributesOf(memberPutSchema);
const attributes: Attribute[] = [
  {
    name: 'id',
    type: 'string',
    computed: true,
    stable: true,
    description: '"<org>/<user>", as `terraform import` takes it.',
  },
  { name: 'org', type: 'string', required: true, forcesReplacement: true },
  {
    name: 'user',
    type: 'string',
    required: true,
    forcesReplacement: true,
    description: 'The user (`kumo user create`).',
  },
  ...fields,
];

const path = (s: TfObject) => `/v1/orgs/${String(s.org)}/members/${String(s.user)}`;

function stateOf(m: Member): TfObject {
  return {
    id: `${m.org}/${m.user}`,
    org: m.org,
    user: m.user,
    ...objectToTf(fields, m as unknown as Record<string, unknown>),
  };
}

async function find(api: KumoApi, s: TfObject): Promise<TfObject | null> {
  try {
    const { items } = await api.request<{ items: Member[] }>('GET', `/v1/orgs/${String(s.org)}/members`);
    const member = items.find((m) => m.user === s.user);
    return member ? stateOf(member) : null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null; // the org is gone
    throw err;
  }
}

async function put(api: KumoApi, planned: TfObject) {
  const member = await api.request<Member>('PUT', path(planned), objectFromTf(fields, planned));
  return { state: stateOf(member), diagnostics: [] };
}

/**
 * A user's membership of an org, with its role (and the projects it is limited to). Operators add
 * members; an org's owners and admins change existing ones (others join by invitation).
 */
export const memberResource: ManagedResource = {
  typeName: 'kumo_member',
  block: { description: "A user's role in an org (PUT /v1/orgs/{org}/members/{user}).", attributes },
  async plan(_api, prior, proposed) {
    const planned = planObject(
      attributes,
      proposed,
      prior,
      !prior || configurableDiffers(attributes, proposed, prior),
    );
    return {
      planned,
      requiresReplace: prior ? replacements(attributes, prior, proposed) : [],
      diagnostics: [],
    };
  },
  create: (api, planned) => put(api, planned),
  update: (api, _prior, planned) => put(api, planned),
  async delete(api, prior) {
    try {
      await api.request('DELETE', path(prior));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  },
  read: (api, state) => find(api, state),
  importState(id) {
    const [org, user, ...rest] = id.split('/');
    if (!org || !user || rest.length > 0)
      throw new ApiError(0, `"${id}" is not an id of a kumo_member`, 'Import it as "<org>/<user>".');
    return { id, org, user, role: null, projects: null };
  },
};
