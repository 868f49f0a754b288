import { ExtensionCodec, decode, encode } from '@msgpack/msgpack';

/**
 * Terraform's type system as the plugin protocol writes it (JSON type constraints in schemas) and
 * its values as this provider holds them: null, UNKNOWN (known only after apply), strings,
 * numbers, booleans, arrays (lists, sets) and plain objects (objects, maps).
 */
export type TfType =
  | 'string'
  | 'number'
  | 'bool'
  | readonly ['list' | 'set' | 'map', TfType]
  | readonly ['object', Readonly<Record<string, TfType>>];

export const UNKNOWN: unique symbol = Symbol('unknown');
export type TfValue =
  null | typeof UNKNOWN | string | number | boolean | TfValue[] | { [key: string]: TfValue };
export type TfObject = { [key: string]: TfValue };

/** An unknown value is msgpack extension 0 (docs/plugin-protocol/object-wire-format.md). */
const codec = new ExtensionCodec();
codec.register({
  type: 0,
  encode: (value) => (value === UNKNOWN ? new Uint8Array([0]) : null),
  decode: () => UNKNOWN,
});

/** A DynamicValue's msgpack, read as a value of type. */
export function fromMsgpack(bytes: Uint8Array | undefined, type: TfType): TfValue {
  if (!bytes || bytes.length === 0) return null;
  return conform(decode(bytes, { extensionCodec: codec }) as TfValue, type);
}

/** A value of type as a DynamicValue's msgpack: every attribute of an object present, null or not. */
export function toMsgpack(value: TfValue, type: TfType): Uint8Array {
  return encode(conform(value, type), { extensionCodec: codec, ignoreUndefined: false });
}

/** A JSON-encoded value (stored state, DynamicValue.json) read as a value of type. */
export function fromJson(bytes: Uint8Array | undefined, type: TfType): TfValue {
  if (!bytes || bytes.length === 0) return null;
  return conform(JSON.parse(Buffer.from(bytes).toString('utf8')) as TfValue, type);
}

/**
 * value shaped to type: objects get exactly their type's attributes (missing ones null), numbers
 * sent as strings (the wire format allows it for big ones) are read as numbers.
 */
export function conform(value: unknown, type: TfType): TfValue {
  if (value === null || value === undefined) return null;
  if (value === UNKNOWN) return UNKNOWN;
  if (type === 'number') return typeof value === 'string' ? Number(value) : (value as number);
  if (typeof type === 'string') return value as TfValue;
  const [kind, inner] = type;
  if (kind === 'object') {
    const object = value as Record<string, unknown>;
    const attributes = inner as Record<string, TfType>;
    return Object.fromEntries(Object.entries(attributes).map(([k, t]) => [k, conform(object[k], t)]));
  }
  if (kind === 'map')
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, conform(v, inner as TfType)]),
    );
  return (value as unknown[]).map((v) => conform(v, inner as TfType));
}

/** Whether a value holds no unknown anywhere. */
export function whollyKnown(value: TfValue): boolean {
  if (value === UNKNOWN) return false;
  if (value === null || typeof value !== 'object') return true;
  return Object.values(value).every((v) => whollyKnown(v));
}

/** Deep equality of two values (unknown equals only unknown). */
export function sameValue(a: TfValue, b: TfValue): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!sameValue((a as TfObject)[k] ?? null, (b as TfObject)[k] ?? null)) return false;
  return true;
}
