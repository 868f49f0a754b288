import type { Condition, KindDefinition, Resource } from '@kumo/api';
import { ApiError, type KumoApi } from './kumo-api.js';
import { type Diagnostic, error } from './diagnostics.js';
import { configurableDiffers, planObject, replacements } from './plan.js';
import { type Attribute, type Block, attributesOf } from './schema.js';
import { parseDuration } from './durations.js';
import { type TfObject, type TfValue, UNKNOWN, sameValue } from './values.js';

/** A Terraform managed resource type. */
export interface ManagedResource {
  typeName: string;
  block: Block;
  plan(api: KumoApi | undefined, prior: TfObject | null, proposed: TfObject): Promise<Planned>;
  create(api: KumoApi, planned: TfObject): Promise<Applied>;
  update(api: KumoApi, prior: TfObject, planned: TfObject): Promise<Applied>;
  delete(api: KumoApi, prior: TfObject): Promise<void>;
  /** Its current state, or null when it is gone. */
  read(api: KumoApi, state: TfObject): Promise<TfObject | null>;
  /** The state an import by id starts from (then read). */
  importState(id: string): TfObject;
}

export interface Planned {
  planned: TfObject;
  requiresReplace: string[];
  diagnostics: Diagnostic[];
}

/** What an apply left: the state to record (also when it failed part-way), and what went wrong. */
export interface Applied {
  state: TfObject | null;
  diagnostics: Diagnostic[];
}

const DEFAULT_TIMEOUT = '30m';
const POLL_MS = 1000;

const timeoutsBlock = {
  name: 'timeouts',
  nesting: 'SINGLE' as const,
  description: 'How long create, update and delete wait for Kumo (Go durations, e.g. "30m"; default 30m).',
  attributes: ['create', 'update', 'delete'].map((name) => ({
    name,
    type: 'string' as const,
    optional: true,
  })),
};

export interface KindResourceOptions {
  typeName: string;
  kind: KindDefinition;
  description: string;
  /** Spec fields the provider leaves out (set through routes of their own). */
  omit?: readonly string[];
  /** Attributes of the status or metadata, computed only. */
  computed?: Array<Attribute & { read: (r: Resource) => TfValue }>;
  /** Whether create and update wait until Kumo reports the change done (Ready at its generation). */
  waits: boolean;
  /** Reads a string Terraform holds for a field the API takes as string, number or boolean. */
  parseScalar?: (
    api: KumoApi,
    spec: Record<string, unknown>,
    path: string[],
    text: string,
  ) => Promise<unknown>;
  /** Warnings about a planned update (e.g. a parameter that restarts the server). */
  warn?: (api: KumoApi, prior: TfObject, planned: TfObject) => Promise<Diagnostic[]>;
}

/**
 * A Terraform resource for one Kumo kind, derived from the kind's definition: its spec fields are
 * the attributes (from the same zod schema the API validates with), immutable fields force
 * replacement, fields Kumo fills in are computed; create and update wait for Kumo to report the
 * change done, delete for the resource to be gone.
 */
export function kindResource(options: KindResourceOptions): ManagedResource {
  const { kind } = options;
  const projectScoped = kind.scope === 'project';
  const specAttributes = attributesOf(kind.spec, {
    ...(kind.immutable ? { immutable: kind.immutable } : {}),
    ...(kind.recorded ? { computedFields: kind.recorded } : {}),
    ...(options.omit ? { omit: options.omit } : {}),
  });
  const identity: Attribute[] = [
    ...(projectScoped
      ? [
          {
            name: 'project',
            type: 'string' as const,
            required: true,
            forcesReplacement: true,
            description: 'The project it belongs to.',
          },
        ]
      : []),
    {
      name: 'name',
      type: 'string',
      required: true,
      forcesReplacement: true,
      description: `The ${kind.kind}'s name.`,
    },
  ];
  const computed = options.computed ?? [];
  const attributes: Attribute[] = [
    {
      name: 'id',
      type: 'string',
      computed: true,
      stable: true,
      description: projectScoped ? '"<project>/<name>", as `terraform import` takes it.' : 'Its name.',
    },
    ...identity,
    {
      name: 'labels',
      type: ['map', 'string'],
      optional: true,
      computed: true,
      description: 'Labels (metadata.labels).',
    },
    ...specAttributes,
    ...computed,
  ];
  const block: Block = { description: options.description, attributes, blocks: [timeoutsBlock] };

  const itemPath = (s: TfObject) =>
    projectScoped
      ? `/v1/projects/${String(s.project)}/${kind.plural}/${String(s.name)}`
      : `/v1/${kind.plural}/${String(s.name)}`;
  const collectionPath = (s: TfObject) =>
    projectScoped ? `/v1/projects/${String(s.project)}/${kind.plural}` : `/v1/${kind.plural}`;

  function stateOf(r: Resource, timeouts: TfValue): TfObject {
    const spec = r.spec as Record<string, unknown>;
    return {
      id: projectScoped ? `${r.metadata.project}/${r.metadata.name}` : r.metadata.name,
      ...(projectScoped ? { project: r.metadata.project ?? '' } : {}),
      name: r.metadata.name,
      labels: { ...(r.metadata.labels ?? {}) },
      ...objectToTf(specAttributes, spec),
      ...Object.fromEntries(computed.map((c) => [c.name, c.read(r)])),
      timeouts,
    };
  }

  async function specOf(api: KumoApi, planned: TfObject): Promise<Record<string, unknown>> {
    const spec = objectFromTf(specAttributes, planned);
    if (options.parseScalar)
      await parseScalars(specAttributes, spec, [], (path, text) =>
        options.parseScalar!(api, spec, path, text),
      );
    else await parseScalars(specAttributes, spec, [], async (_path, text) => guessScalar(text));
    return spec;
  }

  async function settle(
    api: KumoApi,
    state: TfObject,
    r: Resource,
    which: 'create' | 'update',
  ): Promise<Applied> {
    if (!options.waits) return { state: stateOf(r, state.timeouts ?? null), diagnostics: [] };
    const deadline = Date.now() + timeoutOf(state, which);
    for (;;) {
      const outcome = settledOutcome(r);
      if (outcome === 'done') return { state: stateOf(r, state.timeouts ?? null), diagnostics: [] };
      if (outcome === 'failed')
        return { state: stateOf(r, state.timeouts ?? null), diagnostics: [failure(kind.kind, r)] };
      if (Date.now() > deadline)
        return {
          state: stateOf(r, state.timeouts ?? null),
          diagnostics: [
            error(
              `${kind.kind} ${r.metadata.name} was not ready within the ${which} timeout`,
              `Last seen: phase ${String(r.status.phase ?? 'none')}${describeReady(r)}. Raise timeouts.${which} or look at \`kumo describe\`.`,
            ),
          ],
        };
      await sleep(POLL_MS);
      const again = await api.find(itemPath(state));
      if (!again)
        return {
          state: null,
          diagnostics: [
            error(`${kind.kind} ${String(state.name)} disappeared while Terraform waited for it`),
          ],
        };
      r = again;
    }
  }

  return {
    typeName: options.typeName,
    block,

    async plan(api, prior, proposed) {
      const changing = !prior || configurableDiffers(attributes, proposed, prior);
      const planned = planObject(attributes, proposed, prior, changing);
      if (!prior) return { planned, requiresReplace: [], diagnostics: [] };
      const requiresReplace = replacements(attributes, prior, proposed);
      const diagnostics =
        api && options.warn && changing && requiresReplace.length === 0
          ? await options.warn(api, prior, planned)
          : [];
      return { planned, requiresReplace, diagnostics };
    },

    async create(api, planned) {
      const labels = (planned.labels as Record<string, string> | null) ?? {};
      const r = await api.request<Resource>('POST', collectionPath(planned), {
        metadata: { name: planned.name, labels },
        spec: await specOf(api, planned),
      });
      return settle(api, planned, r, 'create');
    },

    async update(api, prior, planned) {
      // Only what Terraform alone keeps changed (timeouts): nothing to tell Kumo.
      if (!configurableDiffers(attributes, planned, prior))
        return { state: { ...prior, timeouts: planned.timeouts ?? null }, diagnostics: [] };
      const labels = (planned.labels as Record<string, string> | null) ?? {};
      const r = await api.request<Resource>('PUT', itemPath(planned), {
        metadata: { name: planned.name, labels },
        spec: await specOf(api, planned),
      });
      return settle(api, planned, r, 'update');
    },

    async delete(api, prior) {
      try {
        await api.request('DELETE', itemPath(prior));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return;
        throw err;
      }
      const deadline = Date.now() + timeoutOf(prior, 'delete');
      while (await api.find(itemPath(prior))) {
        if (Date.now() > deadline)
          throw new ApiError(
            0,
            `${kind.kind} ${String(prior.name)} was not deleted within the delete timeout`,
            'Raise timeouts.delete, or look at `kumo describe` for what holds it.',
          );
        await sleep(POLL_MS);
      }
    },

    async read(api, state) {
      const r = await api.find(itemPath(state));
      return r ? stateOf(r, state.timeouts ?? null) : null;
    },

    importState(id) {
      const parts = id.split('/');
      if (projectScoped ? parts.length !== 2 : parts.length !== 1)
        throw new ApiError(
          0,
          `"${id}" is not an id of a ${options.typeName}`,
          projectScoped ? 'Import it as "<project>/<name>".' : 'Import it by its name.',
        );
      const state: TfObject = Object.fromEntries(attributes.map((a) => [a.name, null]));
      state.id = id;
      if (projectScoped) [state.project, state.name] = parts as [string, string];
      else state.name = parts[0]!;
      state.timeouts = null;
      return state;
    },
  };
}

/** Done, failed, or still on its way — the same rule as `kumo … --wait`. */
function settledOutcome(r: Resource): 'done' | 'failed' | undefined {
  const ready = (r.status.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');
  const settled = r.status.observedGeneration === r.metadata.generation;
  if (settled && (r.spec as { stopped?: boolean }).stopped)
    return r.status.phase === 'Stopped' ? 'done' : undefined;
  if (settled && ready?.status === 'True') return 'done';
  if (r.status.phase === 'Error' || r.status.phase === 'Failed') return 'failed';
  return undefined;
}

function describeReady(r: Resource): string {
  const ready = (r.status.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');
  return ready ? `, Ready ${ready.status} (${ready.reason}${ready.message ? `: ${ready.message}` : ''})` : '';
}

/** The reason a resource failed, from the condition that says so. */
function failure(kind: string, r: Resource): Diagnostic {
  const conditions = (r.status.conditions as Condition[] | undefined) ?? [];
  const failing =
    conditions.find((c) => c.type === 'Ready' && c.status === 'False') ??
    conditions.find((c) => c.status === 'False');
  return error(
    `${kind} ${r.metadata.name} failed: ${failing?.reason ?? String(r.status.phase)}`,
    failing?.message ?? 'Kumo reports it failed; `kumo describe` shows its conditions and events.',
  );
}

function timeoutOf(state: TfObject, which: 'create' | 'update' | 'delete'): number {
  const timeouts = state.timeouts as TfObject | null;
  return parseDuration((timeouts?.[which] as string | null) ?? DEFAULT_TIMEOUT);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** API values as Terraform values, attribute by attribute (absent → null). */
export function objectToTf(attributes: readonly Attribute[], source: Record<string, unknown>): TfObject {
  return Object.fromEntries(attributes.map((a) => [a.name, toTf(a, source[a.apiName ?? a.name])]));
}

function toTf(a: Attribute, value: unknown): TfValue {
  if (value === undefined || value === null) return null;
  if (a.nested) {
    const inner = a.nested.attributes;
    if (a.nested.nesting === 'SINGLE') return objectToTf(inner, value as Record<string, unknown>);
    if (a.nested.nesting === 'LIST')
      return (value as Record<string, unknown>[]).map((v) => objectToTf(inner, v));
    return Object.fromEntries(
      Object.entries(value as Record<string, Record<string, unknown>>).map(([k, v]) => [
        k,
        objectToTf(inner, v),
      ]),
    );
  }
  if (a.scalarUnion) {
    if (Array.isArray(value)) return value.map((v) => String(v));
    if (typeof value === 'object')
      return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, String(v)]));
    return String(value);
  }
  return value as TfValue;
}

/** Terraform values as API values: nulls left out. */
export function objectFromTf(attributes: readonly Attribute[], source: TfObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of attributes) {
    const value = source[a.name] ?? null;
    // Unknown until applied: left to Kumo (a default, or a decision it records).
    if (value === null || value === UNKNOWN || a.apiName === undefined) continue;
    if (!a.nested) out[a.apiName] = value;
    else if (a.nested.nesting === 'SINGLE')
      out[a.apiName] = objectFromTf(a.nested.attributes, value as TfObject);
    else if (a.nested.nesting === 'LIST')
      out[a.apiName] = (value as TfObject[]).map((v) => objectFromTf(a.nested!.attributes, v));
    else
      out[a.apiName] = Object.fromEntries(
        Object.entries(value as Record<string, TfObject>).map(([k, v]) => [
          k,
          objectFromTf(a.nested!.attributes, v),
        ]),
      );
  }
  return out;
}

/** Replaces the strings of scalar-union fields in spec (by API name) with what parse makes of them. */
async function parseScalars(
  attributes: readonly Attribute[],
  spec: Record<string, unknown>,
  path: string[],
  parse: (path: string[], text: string) => Promise<unknown>,
): Promise<void> {
  for (const a of attributes) {
    const key = a.apiName;
    if (!key || spec[key] === undefined) continue;
    const value = spec[key];
    if (a.scalarUnion) {
      if (typeof value === 'string') spec[key] = await parse([...path, key], value);
      else if (Array.isArray(value))
        spec[key] = await Promise.all(value.map((v, i) => parse([...path, key, String(i)], v as string)));
      else
        for (const [k, v] of Object.entries(value as Record<string, string>))
          (value as Record<string, unknown>)[k] = await parse([...path, key, k], v);
    } else if (a.nested?.nesting === 'SINGLE') {
      await parseScalars(a.nested.attributes, value as Record<string, unknown>, [...path, key], parse);
    }
  }
}

/** A number or a boolean when the text is one, else the text. */
export function guessScalar(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  return text;
}

export { sameValue };
