import { z } from 'zod';

/** A resource name: an RFC 1123 DNS label that starts with a letter (usable as a hostname and a database name). */
export const NAME_PATTERN = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

export const nameSchema = z
  .string()
  .regex(
    NAME_PATTERN,
    'must be a DNS label: 1-63 lowercase letters, digits or "-", starting with a letter and ending with a letter or digit',
  )
  .meta({
    description: 'A DNS label, unique per kind (per project for project-scoped kinds).',
    example: 'shop',
  });

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export const labelKeySchema = z
  .string()
  .regex(LABEL_KEY, 'must be an optional DNS prefix and "/", then 1-63 letters, digits, "-", "_" or "."');
export const labelValueSchema = z
  .string()
  .regex(
    LABEL_VALUE,
    'must be at most 63 letters, digits, "-", "_" or ".", starting and ending alphanumeric',
  );

export const labelsSchema = z
  .record(labelKeySchema, labelValueSchema)
  .meta({ description: 'Key/value pairs used by label selectors.', example: { env: 'prod' } });

export const finalizerSchema = z
  .string()
  .regex(/^[a-z0-9.-]+\/[a-z0-9-]+$/, 'must look like "domain/name", e.g. "kumo.dev/runtime"');

/** Metadata as stored and returned by the API. */
export const objectMetaSchema = z
  .strictObject({
    name: nameSchema,
    project: nameSchema.optional().meta({ description: 'The owning project, for project-scoped kinds.' }),
    uid: z
      .string()
      .meta({ description: 'Unique for the lifetime of the platform; a re-created name gets a new uid.' }),
    generation: z.number().int().meta({ description: 'Increases on every spec change, and only then.' }),
    resourceVersion: z
      .string()
      .meta({ description: 'Changes on every write; the ETag. Opaque: compare for equality only.' }),
    createdAt: z.string(),
    updatedAt: z.string(),
    labels: labelsSchema,
    finalizers: z.array(finalizerSchema),
    deletionTimestamp: z.string().nullable(),
  })
  .meta({ id: 'ObjectMeta' });
export type ObjectMeta = z.infer<typeof objectMetaSchema>;

/**
 * Metadata as a client may send it. Only name, labels and finalizers are writable; the read-only
 * fields are accepted (so that a GET result can be sent back) and ignored, except resourceVersion,
 * which acts as a precondition like If-Match.
 */
export const objectMetaInputSchema = z
  .strictObject({
    name: nameSchema,
    project: nameSchema.optional(),
    labels: labelsSchema.optional(),
    finalizers: z.array(finalizerSchema).optional(),
    uid: z.string().optional(),
    generation: z.number().int().optional(),
    resourceVersion: z.string().optional(),
    createdAt: z.string().optional(),
    updatedAt: z.string().optional(),
    deletionTimestamp: z.string().nullable().optional(),
  })
  .meta({ id: 'ObjectMetaInput' });
export type ObjectMetaInput = z.infer<typeof objectMetaInputSchema>;
