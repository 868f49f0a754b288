import { describe, expect, it } from 'vitest';
import { findCondition, isConditionTrue, removeCondition, setCondition } from './conditions.js';

describe('setCondition', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const t1 = new Date('2026-01-01T00:01:00Z');

  it('adds a new condition with the current time as lastTransitionTime', () => {
    const list = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'Provisioning', message: '' },
      t0,
    );
    expect(list).toEqual([
      {
        type: 'Ready',
        status: 'False',
        reason: 'Provisioning',
        message: '',
        lastTransitionTime: t0.toISOString(),
      },
    ]);
  });

  it('keeps lastTransitionTime when the status does not flip, even if reason and message change', () => {
    const first = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'Provisioning', message: 'a' },
      t0,
    );
    const second = setCondition(
      first,
      { type: 'Ready', status: 'False', reason: 'Starting', message: 'b' },
      t1,
    );
    expect(second).toHaveLength(1);
    expect(second[0]).toMatchObject({
      reason: 'Starting',
      message: 'b',
      lastTransitionTime: t0.toISOString(),
    });
  });

  it('moves lastTransitionTime when the status flips, and leaves other types alone', () => {
    let list = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'Provisioning', message: '' },
      t0,
    );
    list = setCondition(list, { type: 'AclApplied', status: 'True', reason: 'Applied', message: '' }, t0);
    list = setCondition(list, { type: 'Ready', status: 'True', reason: 'Running', message: '' }, t1);
    expect(findCondition(list, 'Ready')?.lastTransitionTime).toBe(t1.toISOString());
    expect(findCondition(list, 'AclApplied')?.lastTransitionTime).toBe(t0.toISOString());
    expect(isConditionTrue(list, 'Ready')).toBe(true);
  });

  it('does not mutate its input', () => {
    const list = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'X', message: '' }, t0);
    const copy = structuredClone(list);
    setCondition(list, { type: 'Ready', status: 'True', reason: 'Y', message: '' }, t1);
    expect(list).toEqual(copy);
  });
});

describe('removeCondition', () => {
  it('removes only the condition of that type', () => {
    let list = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Active', message: '' });
    list = setCondition(list, { type: 'WithinBudget', status: 'True', reason: 'UnderBudget', message: '' });
    expect(removeCondition(list, 'WithinBudget').map((c) => c.type)).toEqual(['Ready']);
    expect(removeCondition(undefined, 'WithinBudget')).toEqual([]);
  });
});
