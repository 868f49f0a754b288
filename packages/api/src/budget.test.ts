import { describe, expect, it } from 'vitest';
import { budgetSchema } from './budget.js';
import { orgKind } from './kinds/org.js';
import { projectKind } from './kinds/project.js';

describe('budget', () => {
  it('defaults its thresholds to 50, 80 and 100 %', () => {
    expect(budgetSchema.parse({ amount: '500.00' })).toEqual({ amount: '500.00', thresholds: [50, 80, 100] });
  });

  it.each([
    { reason: 'not a decimal', budget: { amount: '5e2' } },
    { reason: 'a negative amount', budget: { amount: '-1' } },
    { reason: 'nothing to spend', budget: { amount: '0.00' } },
    { reason: 'finer than any currency', budget: { amount: '1.0001' } },
    { reason: 'thresholds out of order', budget: { amount: '1', thresholds: [80, 50] } },
    { reason: 'a threshold twice', budget: { amount: '1', thresholds: [50, 50] } },
    { reason: 'a threshold of 0', budget: { amount: '1', thresholds: [0, 50] } },
    { reason: 'a threshold above 1000 %', budget: { amount: '1', thresholds: [1001] } },
    { reason: 'no thresholds', budget: { amount: '1', thresholds: [] } },
    { reason: 'an unknown field', budget: { amount: '1', currency: 'EUR' } },
  ])('refuses $reason', ({ budget }) => {
    expect(budgetSchema.safeParse(budget).success).toBe(false);
  });

  it('is optional in the org and the project spec, and keeps their other fields', () => {
    expect(orgKind.spec.parse({ timeZone: 'Europe/Berlin' })).toEqual({ timeZone: 'Europe/Berlin' });
    expect(projectKind.spec.parse({ org: 'acme', budget: { amount: '50', thresholds: [90] } })).toEqual({
      org: 'acme',
      budget: { amount: '50', thresholds: [90] },
    });
  });
});
