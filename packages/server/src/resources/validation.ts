import type { FieldError } from '@kumo/api';
import type { z } from 'zod';
import { ValidationError } from '../errors.js';

/** Parses value with schema or throws a ValidationError naming every offending field. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
  prefix: string[] = [],
): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw validationErrorFrom(result.error, what, prefix);
}

export function validationErrorFrom(error: z.ZodError, what: string, prefix: string[] = []): ValidationError {
  const fields = zodIssuesToFields(error, prefix);
  const summary = fields.map((f) => `${f.field || '(body)'}: ${f.message}`).join('; ');
  return new ValidationError(`The ${what} is invalid. ${summary}`, fields);
}

export function zodIssuesToFields(error: z.ZodError, prefix: string[] = []): FieldError[] {
  const fields: FieldError[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path.map(String)];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        fields.push({
          field: [...path, key].join('.'),
          message: 'is not a known field; check its spelling or remove it',
        });
      }
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      fields.push({ field: path.join('.'), message: `is required (${issue.expected})` });
    } else {
      fields.push({ field: path.join('.'), message: issue.message });
    }
  }
  return fields;
}
