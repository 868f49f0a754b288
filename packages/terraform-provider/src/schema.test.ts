import { databaseKind } from '@kumo/api';
import { describe, expect, it } from 'vitest';
import { attributesOf, snakeCase, valueType } from './schema.js';

describe('attributes derived from the API’s zod schemas', () => {
  const attributes = attributesOf(databaseKind.spec, {
    immutable: databaseKind.immutable ?? [],
    computedFields: databaseKind.recorded ?? [],
  });
  const attribute = (name: string) => attributes.find((a) => a.name === name)!;

  it('names fields the Terraform way', () => {
    expect(['storageGB', 'expiresAt', 'keepLast', 'targetSelector'].map(snakeCase)).toEqual([
      'storage_gb',
      'expires_at',
      'keep_last',
      'target_selector',
    ]);
  });

  it('makes required fields required, defaulted and recorded ones optional and computed, immutable ones replace', () => {
    expect(attribute('engine')).toMatchObject({ required: true, forcesReplacement: true, type: 'string' });
    expect(attribute('plan')).toMatchObject({ required: true });
    expect(attribute('plan').forcesReplacement).toBeUndefined();
    expect(attribute('storage_gb')).toMatchObject({ optional: true, computed: true, type: 'number' });
    expect(attribute('target')).toMatchObject({ optional: true, computed: true, forcesReplacement: true });
    expect(attribute('target_selector')).toMatchObject({ optional: true, type: ['map', 'string'] });
  });

  it('nests objects and lists of objects, and holds string-number-boolean unions as strings', () => {
    expect(valueType(attribute('acl'))).toEqual([
      'list',
      ['object', { cidr: 'string', description: 'string', expires_at: 'string' }],
    ]);
    expect(attribute('backup_policy').nested?.nesting).toBe('SINGLE');
    expect(attribute('parameters')).toMatchObject({ type: ['map', 'string'], scalarUnion: true });
  });

  it('carries a field added to the API without copying it by hand', () => {
    const names = attributes.map((a) => a.name);
    for (const field of Object.keys(databaseKind.spec.shape)) expect(names).toContain(snakeCase(field));
  });
});
