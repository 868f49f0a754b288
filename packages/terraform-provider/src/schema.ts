import { z } from 'zod';
import type { TfType } from './values.js';

/**
 * An attribute of a resource or data source as this provider knows it: its Terraform name and
 * type, where it comes from in the API (a spec field, by its camelCase name), and how it plans.
 */
export interface Attribute {
  name: string;
  /** The spec field it maps to (absent: the provider fills it itself). */
  apiName?: string;
  /** A scalar type, or nested attributes. */
  type?: TfType;
  nested?: { nesting: 'SINGLE' | 'LIST' | 'MAP'; attributes: Attribute[] };
  description?: string;
  required?: boolean;
  optional?: boolean;
  /** Filled by Kumo when not set (a default, a decision recorded at creation) or only by Kumo. */
  computed?: boolean;
  sensitive?: boolean;
  /** A change replaces the resource (an immutable field). */
  forcesReplacement?: boolean;
  /** The API accepts a string, a number or a boolean here; Terraform holds it as a string. */
  scalarUnion?: boolean;
  /** Computed only: keeps its value across updates (an id), instead of becoming unknown. */
  stable?: boolean;
}

/** Terraform's name of an API field: storageGB → storage_gb, expiresAt → expires_at. */
export function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

type JsonSchema = {
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  default?: unknown;
  description?: string;
};

/**
 * The attributes of a zod object schema (a kind's spec), derived the way the API reads it: a field
 * with a default, or one in `computedFields` (recorded by Kumo at creation), is optional and
 * computed; a required field is required; fields in `immutable` force replacement; `omit` leaves
 * fields out (ones set through other routes than the spec's).
 */
export function attributesOf(
  schema: z.ZodType,
  options: {
    immutable?: readonly string[];
    computedFields?: readonly string[];
    omit?: readonly string[];
  } = {},
): Attribute[] {
  const root = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const resolve = (s: JsonSchema): JsonSchema => {
    if (!s.$ref) return s;
    const id = s.$ref.replace('#/$defs/', '');
    const target = root.$defs?.[id];
    if (!target) throw new Error(`schema: unresolved ${s.$ref}`);
    return resolve({ ...target, ...(s.description ? { description: s.description } : {}) });
  };
  return objectAttributes(resolve(root), resolve, options);
}

function objectAttributes(
  object: JsonSchema,
  resolve: (s: JsonSchema) => JsonSchema,
  options: { immutable?: readonly string[]; computedFields?: readonly string[]; omit?: readonly string[] },
): Attribute[] {
  const required = new Set(object.required ?? []);
  return Object.entries(object.properties ?? {})
    .filter(([name]) => !options.omit?.includes(name))
    .map(([apiName, raw]) => {
      const field = resolve(raw);
      const computed = field.default !== undefined || !!options.computedFields?.includes(apiName);
      const attribute: Attribute = {
        name: snakeCase(apiName),
        apiName,
        ...(field.description ? { description: field.description } : {}),
        ...(required.has(apiName) && !computed ? { required: true } : { optional: true }),
        ...(computed ? { computed: true } : {}),
        ...(options.immutable?.includes(apiName) ? { forcesReplacement: true } : {}),
      };
      return { ...attribute, ...typeOf(field, resolve) };
    });
}

function typeOf(
  field: JsonSchema,
  resolve: (s: JsonSchema) => JsonSchema,
): Pick<Attribute, 'type' | 'nested' | 'scalarUnion'> {
  const types = Array.isArray(field.type) ? field.type : field.type ? [field.type] : [];
  const alternatives = field.anyOf ?? field.oneOf;
  if (alternatives) {
    const resolved = alternatives.map(resolve);
    if (resolved.every((a) => a.type === 'string')) return { type: 'string' };
    return { type: 'string', scalarUnion: true };
  }
  if (types.length > 1) return { type: 'string', scalarUnion: true };
  switch (types[0]) {
    case 'string':
      return { type: 'string' };
    case 'integer':
    case 'number':
      return { type: 'number' };
    case 'boolean':
      return { type: 'bool' };
    case 'array': {
      const items = resolve(field.items ?? {});
      if (items.type === 'object' && items.properties)
        return { nested: { nesting: 'LIST', attributes: objectAttributes(items, resolve, {}) } };
      const inner = typeOf(items, resolve);
      return { type: ['list', inner.type ?? 'string'], ...(inner.scalarUnion ? { scalarUnion: true } : {}) };
    }
    case 'object': {
      if (field.properties)
        return { nested: { nesting: 'SINGLE', attributes: objectAttributes(field, resolve, {}) } };
      const values =
        typeof field.additionalProperties === 'object' ? resolve(field.additionalProperties) : {};
      const inner = typeOf(values, resolve);
      return { type: ['map', inner.type ?? 'string'], ...(inner.scalarUnion ? { scalarUnion: true } : {}) };
    }
    default:
      return { type: 'string' };
  }
}

/** The Terraform type of an attribute's value. */
export function valueType(attribute: Attribute): TfType {
  if (attribute.type) return attribute.type;
  const nested = attribute.nested!;
  const object: TfType = ['object', objectType(nested.attributes)];
  if (nested.nesting === 'SINGLE') return object;
  return [nested.nesting === 'LIST' ? 'list' : 'map', object];
}

export function objectType(attributes: readonly Attribute[]): Record<string, TfType> {
  return Object.fromEntries(attributes.map((a) => [a.name, valueType(a)]));
}

/** A block: attributes, and nested blocks (only `timeouts` here). */
export interface Block {
  description?: string;
  attributes: Attribute[];
  blocks?: Array<{ name: string; nesting: 'SINGLE'; attributes: Attribute[]; description?: string }>;
}

export function blockType(block: Block): TfType {
  const attributes = objectType(block.attributes);
  for (const b of block.blocks ?? []) attributes[b.name] = ['object', objectType(b.attributes)];
  return ['object', attributes];
}

/** A Block as tfplugin6.Schema.Block (the message proto-loader encodes). */
export function schemaMessage(block: Block, version = 0) {
  return {
    version,
    block: {
      version,
      description: block.description ?? '',
      description_kind: 'MARKDOWN',
      attributes: block.attributes.map(attributeMessage),
      block_types: (block.blocks ?? []).map((b) => ({
        type_name: b.name,
        nesting: b.nesting,
        block: {
          description: b.description ?? '',
          description_kind: 'MARKDOWN',
          attributes: b.attributes.map(attributeMessage),
        },
      })),
    },
  };
}

function attributeMessage(a: Attribute): Record<string, unknown> {
  return {
    name: a.name,
    ...(a.type ? { type: Buffer.from(JSON.stringify(a.type)) } : {}),
    ...(a.nested
      ? { nested_type: { nesting: a.nested.nesting, attributes: a.nested.attributes.map(attributeMessage) } }
      : {}),
    description: a.description ?? '',
    description_kind: 'MARKDOWN',
    required: !!a.required,
    optional: !!a.optional,
    computed: !!a.computed,
    sensitive: !!a.sensitive,
  };
}
