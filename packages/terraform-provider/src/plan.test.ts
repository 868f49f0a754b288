import { describe, expect, it } from 'vitest';
import { configurableDiffers, planObject, replacements } from './plan.js';
import type { Attribute } from './schema.js';
import { UNKNOWN } from './values.js';

const attributes: Attribute[] = [
  { name: 'id', type: 'string', computed: true, stable: true },
  { name: 'phase', type: 'string', computed: true },
  { name: 'name', type: 'string', required: true, forcesReplacement: true },
  { name: 'plan', type: 'string', required: true },
  { name: 'size', type: 'number', optional: true, computed: true },
  { name: 'engine', type: 'string', required: true, forcesReplacement: true },
];
const prior = {
  id: 'shop/orders',
  phase: 'Ready',
  name: 'orders',
  plan: 'small',
  size: 10,
  engine: 'postgres',
};

describe('planning', () => {
  it('leaves what Kumo decides unknown on creation', () => {
    const planned = planObject(
      attributes,
      { id: null, phase: null, name: 'orders', plan: 'small', size: null, engine: 'postgres' },
      null,
      true,
    );
    expect(planned).toEqual({
      id: UNKNOWN,
      phase: UNKNOWN,
      name: 'orders',
      plan: 'small',
      size: UNKNOWN,
      engine: 'postgres',
    });
  });

  it('plans exactly the prior state when nothing configurable changed', () => {
    const proposed = { ...prior };
    expect(configurableDiffers(attributes, proposed, prior)).toBe(false);
    expect(planObject(attributes, proposed, prior, false)).toEqual(prior);
  });

  it('keeps ids and what is left out, and makes status unknown, on an update', () => {
    const proposed = { ...prior, plan: 'medium' };
    expect(configurableDiffers(attributes, proposed, prior)).toBe(true);
    expect(planObject(attributes, proposed, prior, true)).toEqual({
      ...prior,
      plan: 'medium',
      phase: UNKNOWN,
    });
    expect(replacements(attributes, prior, proposed)).toEqual([]);
  });

  it('replaces on a change of an immutable field only', () => {
    expect(replacements(attributes, prior, { ...prior, engine: 'redis', plan: 'large' })).toEqual(['engine']);
  });
});
