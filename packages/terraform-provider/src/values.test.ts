import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import {
  type TfObject,
  type TfType,
  UNKNOWN,
  conform,
  fromJson,
  fromMsgpack,
  toMsgpack,
  whollyKnown,
} from './values.js';

const type: TfType = [
  'object',
  {
    name: 'string',
    size: 'number',
    on: 'bool',
    tags: ['map', 'string'],
    acl: ['list', ['object', { cidr: 'string', note: 'string' }]],
  },
];

describe('values on the wire (object-wire-format.md)', () => {
  it('round-trips an object through msgpack, unknowns as extension 0 and every attribute present', () => {
    const value: TfObject = {
      name: 'orders',
      size: UNKNOWN,
      on: true,
      tags: { env: 'prod' },
      acl: [{ cidr: '10.0.0.0/8', note: null }],
    };
    const bytes = toMsgpack(value, type);
    expect(fromMsgpack(bytes, type)).toEqual(value);
    // Missing attributes are sent as null, never left out (Terraform decodes by the schema).
    expect(fromMsgpack(toMsgpack({ name: 'x' }, type), type)).toEqual({
      name: 'x',
      size: null,
      on: null,
      tags: null,
      acl: null,
    });
  });

  it('reads numbers Terraform sends as strings (big or precise ones) and stored JSON state', () => {
    expect(fromMsgpack(encode({ size: '12' }), ['object', { size: 'number' }])).toEqual({ size: 12 });
    expect(
      fromJson(Buffer.from('{"name":"a","extra":1}'), ['object', { name: 'string', size: 'number' }]),
    ).toEqual({ name: 'a', size: null });
    expect(fromMsgpack(Buffer.alloc(0), type)).toBeNull();
  });

  it('tells wholly known values from ones with an unknown inside', () => {
    expect(whollyKnown(conform({ name: 'a', acl: [{ cidr: 'x' }] }, type))).toBe(true);
    expect(whollyKnown({ acl: [{ cidr: UNKNOWN }] })).toBe(false);
  });
});
