import { databaseKind } from '@kumo/api';
import { warning } from '../diagnostics.js';
import { guessScalar, kindResource } from '../kind-resource.js';
import type { KumoApi } from '../kumo-api.js';
import type { TfObject } from '../values.js';

type Endpoint = { host: string; port: number } | undefined;

/**
 * A managed database. Its parameters are strings in Terraform (a map holds one type) and sent as
 * the engine's parameter list types them; changing a parameter that needs a restart warns.
 */
export const databaseResource = kindResource({
  typeName: 'kumo_database',
  kind: databaseKind,
  description:
    'A managed database server. Create and update wait until it is Ready at its new generation; a changed engine or version replaces it.',
  // Restores in place are requested through POST …/restore, not configuration.
  omit: ['restoreInPlace'],
  waits: true,
  computed: [
    { name: 'uid', type: 'string', computed: true, stable: true, read: (r) => r.metadata.uid },
    {
      name: 'phase',
      type: 'string',
      computed: true,
      read: (r) => (r.status.phase as string | undefined) ?? null,
    },
    {
      name: 'host',
      type: 'string',
      computed: true,
      read: (r) => (r.status.endpoint as Endpoint)?.host ?? null,
    },
    {
      name: 'port',
      type: 'number',
      computed: true,
      read: (r) => (r.status.endpoint as Endpoint)?.port ?? null,
    },
  ],
  parseScalar: async (api, spec, path, text) => {
    const engine = (await api.engineList()).find((e) => e.engine === spec.engine);
    const parameter =
      path[0] === 'parameters' ? engine?.parameters.find((p) => p.name === path[1]) : undefined;
    if (!parameter) return guessScalar(text);
    if (parameter.type === 'integer' || parameter.type === 'number')
      return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
    if (parameter.type === 'boolean') return text === 'true' ? true : text === 'false' ? false : text;
    return text;
  },
  warn: async (api: KumoApi, prior: TfObject, planned: TfObject) => {
    const before = (prior.parameters ?? {}) as Record<string, string>;
    const after = (planned.parameters ?? {}) as Record<string, string>;
    const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
      (k) => before[k] !== after[k],
    );
    if (changed.length === 0) return [];
    const engine = (await api.engineList()).find((e) => e.engine === planned.engine);
    const restarting = changed.filter(
      (k) => engine?.parameters.find((p) => p.name === k)?.apply === 'restart',
    );
    return restarting.length === 0
      ? []
      : [
          warning(
            `Changing ${restarting.join(', ')} restarts database ${String(planned.name)}`,
            'Kumo applies the change with a restart of the server: connections are dropped for a few seconds.',
            'parameters',
          ),
        ];
  },
});
