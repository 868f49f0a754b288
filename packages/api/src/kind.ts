import { z } from 'zod';
import { objectMetaInputSchema, objectMetaSchema } from './meta.js';

export const API_VERSION = 'kumo.dev/v1';

/**
 * Everything the generic machinery needs to know about a kind. Routes, validation, OpenAPI, the CLI
 * and the console are all derived from these definitions.
 */
export interface KindDefinition<
  Spec extends z.ZodObject = z.ZodObject,
  Status extends z.ZodObject = z.ZodObject,
> {
  /** PascalCase kind name, e.g. "Project". */
  kind: string;
  /** URL segment, e.g. "projects". */
  plural: string;
  /** "platform": /v1/{plural}/{name}; "project": /v1/projects/{project}/{plural}/{name}. */
  scope: 'platform' | 'project';
  description: string;
  spec: Spec;
  status: Status;
  /** Top-level spec fields that cannot change after creation. */
  immutable?: readonly string[];
  /**
   * Top-level spec fields the platform decides at creation when they are left out (a Database's
   * target: placement) and records in the spec. A replace or an `apply` leaving them out keeps them.
   */
  recorded?: readonly string[];
}

export function defineKind<Spec extends z.ZodObject, Status extends z.ZodObject>(
  definition: KindDefinition<Spec, Status>,
): KindDefinition<Spec, Status> {
  return definition;
}

/** The full envelope as the API returns it. */
export function resourceSchema(def: KindDefinition) {
  return z
    .strictObject({
      apiVersion: z.literal(API_VERSION),
      kind: z.literal(def.kind),
      metadata: objectMetaSchema,
      spec: def.spec,
      status: def.status,
    })
    .meta({ id: def.kind, description: def.description });
}

/** What a client sends on create and replace. status is accepted (a GET result can be sent back) and ignored. */
export function resourceInputSchema(def: KindDefinition) {
  return z
    .strictObject({
      apiVersion: z.literal(API_VERSION).optional(),
      kind: z.literal(def.kind).optional(),
      metadata: objectMetaInputSchema,
      spec: def.spec,
      status: z
        .unknown()
        .optional()
        .meta({ description: 'Ignored; written only through the /status route.' }),
    })
    .meta({ id: `${def.kind}Input` });
}

/** The shape every stored resource has, whatever its kind. */
export interface Resource<Spec = Record<string, unknown>, Status = Record<string, unknown>> {
  apiVersion: typeof API_VERSION;
  kind: string;
  metadata: z.infer<typeof objectMetaSchema>;
  spec: Spec;
  status: Status;
}
