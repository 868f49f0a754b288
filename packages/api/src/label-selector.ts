import { labelKeySchema, labelValueSchema } from './meta.js';

/** One clause of a label selector, after Kubernetes' syntax. */
export type LabelRequirement =
  | { key: string; operator: 'in' | 'notin'; values: string[] }
  | { key: string; operator: 'exists' | 'notexists' };

export class LabelSelectorSyntaxError extends Error {
  override readonly name = 'LabelSelectorSyntaxError';
}

/**
 * Parses `env=prod,tier!=db,region in (eu,us),!legacy,team`. `=`/`==` become `in` with one value,
 * `!=` becomes `notin`. Throws LabelSelectorSyntaxError with a message that says what is wrong.
 */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  const requirements: LabelRequirement[] = [];
  for (const clause of splitClauses(selector)) {
    requirements.push(parseClause(clause));
  }
  return requirements;
}

function splitClauses(selector: string): string[] {
  const clauses: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new LabelSelectorSyntaxError(`unbalanced ")" in "${selector}"`);
    if (ch === ',' && depth === 0) {
      clauses.push(current.trim());
      current = '';
    } else current += ch;
  }
  if (depth !== 0) throw new LabelSelectorSyntaxError(`unbalanced "(" in "${selector}"`);
  if (current.trim() !== '' || clauses.length > 0) clauses.push(current.trim());
  for (const clause of clauses) {
    if (clause === '') throw new LabelSelectorSyntaxError(`empty clause in "${selector}"`);
  }
  return clauses;
}

function parseClause(clause: string): LabelRequirement {
  const setMatch = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(clause);
  if (setMatch) {
    const [, key, operator, list] = setMatch as unknown as [string, string, 'in' | 'notin', string];
    const values = list.split(',').map((v) => v.trim());
    return { key: checkKey(key), operator, values: values.map(checkValue) };
  }
  const equality = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(clause);
  if (equality) {
    const [, key, op, value] = equality as unknown as [string, string, string, string];
    return { key: checkKey(key), operator: op === '!=' ? 'notin' : 'in', values: [checkValue(value)] };
  }
  if (clause.startsWith('!')) return { key: checkKey(clause.slice(1).trim()), operator: 'notexists' };
  if (/^\S+$/.test(clause)) return { key: checkKey(clause), operator: 'exists' };
  throw new LabelSelectorSyntaxError(
    `cannot parse "${clause}": use key=value, key!=value, key in (a,b), key notin (a,b), key or !key`,
  );
}

function checkKey(key: string): string {
  const result = labelKeySchema.safeParse(key);
  if (!result.success)
    throw new LabelSelectorSyntaxError(`label key "${key}" ${result.error.issues[0]?.message}`);
  return key;
}

function checkValue(value: string): string {
  const result = labelValueSchema.safeParse(value);
  if (!result.success)
    throw new LabelSelectorSyntaxError(`label value "${value}" ${result.error.issues[0]?.message}`);
  return value;
}

/** True when the labels satisfy every requirement. */
export function matchesLabelSelector(
  labels: Readonly<Record<string, string>>,
  requirements: readonly LabelRequirement[],
): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    switch (r.operator) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'in':
        return has && r.values.includes(labels[r.key]!);
      case 'notin':
        return !has || !r.values.includes(labels[r.key]!);
    }
  });
}
