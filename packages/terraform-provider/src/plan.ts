import type { Attribute } from './schema.js';
import { type TfObject, type TfValue, UNKNOWN, sameValue } from './values.js';

/**
 * The planned value of an object of attributes: what the configuration says, and for computed
 * attributes the configuration leaves out, what they were (kept), or — on creation, or when what
 * they derive from changes — unknown until applied.
 */
export function planObject(
  attributes: readonly Attribute[],
  proposed: TfObject,
  prior: TfObject | null,
  changing: boolean,
): TfObject {
  const planned: TfObject = { ...proposed };
  for (const a of attributes) {
    const value = proposed[a.name] ?? null;
    const before = prior ? (prior[a.name] ?? null) : null;
    if (a.computed && !a.optional && !a.required) {
      // Only Kumo sets it: kept while nothing changes (or when it never does), else known after apply.
      planned[a.name] = prior && (!changing || a.stable) ? before : UNKNOWN;
      continue;
    }
    if (value === null) {
      if (a.computed && (before === null || prior === null)) planned[a.name] = UNKNOWN;
      continue;
    }
    if (!a.nested || value === UNKNOWN) continue;
    const inner = a.nested.attributes;
    if (a.nested.nesting === 'SINGLE')
      planned[a.name] = planObject(inner, value as TfObject, before as TfObject | null, changing);
    else if (a.nested.nesting === 'LIST')
      planned[a.name] = (value as TfObject[]).map((element, i) =>
        planObject(inner, element, ((before as TfObject[] | null) ?? [])[i] ?? null, changing),
      );
  }
  return planned;
}

/** Whether the configurable part (everything but computed-only attributes) of two objects differs. */
export function configurableDiffers(attributes: readonly Attribute[], a: TfObject, b: TfObject): boolean {
  return attributes.some(
    (attr) => (attr.optional || attr.required) && !sameValue(a[attr.name] ?? null, b[attr.name] ?? null),
  );
}

/** The attributes whose change replaces the resource and that change between prior and proposed. */
export function replacements(
  attributes: readonly Attribute[],
  prior: TfObject,
  proposed: TfObject,
): string[] {
  return attributes
    .filter((a) => a.forcesReplacement && !sameValue(prior[a.name] ?? null, proposed[a.name] ?? null))
    .filter((a) => !(a.computed && (proposed[a.name] ?? null) === null))
    .map((a) => a.name);
}

export type { TfValue };
