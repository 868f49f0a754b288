import { describe, expect, it } from 'vitest';
import { LabelSelectorSyntaxError, matchesLabelSelector, parseLabelSelector } from './label-selector.js';

describe('parseLabelSelector', () => {
  const cases: Array<{ reason: string; selector: string; expected: unknown }> = [
    { reason: 'empty selects everything', selector: '', expected: [] },
    {
      reason: 'equality',
      selector: 'env=prod',
      expected: [{ key: 'env', operator: 'in', values: ['prod'] }],
    },
    {
      reason: 'double equals',
      selector: 'env==prod',
      expected: [{ key: 'env', operator: 'in', values: ['prod'] }],
    },
    {
      reason: 'inequality',
      selector: 'tier!=db',
      expected: [{ key: 'tier', operator: 'notin', values: ['db'] }],
    },
    {
      reason: 'set membership with spaces',
      selector: 'region in (eu, us),tier notin (db)',
      expected: [
        { key: 'region', operator: 'in', values: ['eu', 'us'] },
        { key: 'tier', operator: 'notin', values: ['db'] },
      ],
    },
    {
      reason: 'existence and absence',
      selector: 'team,!legacy',
      expected: [
        { key: 'team', operator: 'exists' },
        { key: 'legacy', operator: 'notexists' },
      ],
    },
    {
      reason: 'prefixed key',
      selector: 'kumo.dev/tier=gold',
      expected: [{ key: 'kumo.dev/tier', operator: 'in', values: ['gold'] }],
    },
  ];
  for (const c of cases) it(c.reason, () => expect(parseLabelSelector(c.selector)).toEqual(c.expected));

  for (const [reason, selector] of [
    ['unbalanced parenthesis', 'env in (a,b'],
    ['empty clause', 'env=prod,,x'],
    ['bad key', 'Bad Key=1'],
    ['bad value', 'env=no spaces'],
    ['dangling operator', 'env in'],
  ]) {
    it(`rejects ${reason}`, () =>
      expect(() => parseLabelSelector(selector!)).toThrow(LabelSelectorSyntaxError));
  }
});

describe('matchesLabelSelector', () => {
  it('applies every requirement', () => {
    const sel = parseLabelSelector('env in (prod,staging),tier!=db,!legacy,team');
    expect(matchesLabelSelector({ env: 'prod', team: 'a' }, sel)).toBe(true);
    expect(matchesLabelSelector({ env: 'prod', team: 'a', tier: 'db' }, sel)).toBe(false);
    expect(matchesLabelSelector({ env: 'prod', team: 'a', legacy: 'x' }, sel)).toBe(false);
    expect(matchesLabelSelector({ env: 'dev', team: 'a' }, sel)).toBe(false);
    expect(matchesLabelSelector({ env: 'prod' }, sel)).toBe(false);
  });
});
