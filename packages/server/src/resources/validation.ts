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
  return validationError(what, zodIssuesToFields(error, prefix));
}

/** A ValidationError naming every field, with a detail that lists them ("The request body is invalid. spec.x: …"). */
export function validationError(what: string, fields: FieldError[]): ValidationError {
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

/** What PostgreSQL cannot take as text or jsonb: NUL, and UTF-16 surrogates without their pair. */
const UNSTORABLE = /[\0\p{Cs}]/u;

/**
 * Why PostgreSQL could not store this text, or undefined when it can. Text columns and jsonb refuse
 * NUL; a lone surrogate is not Unicode, so has no UTF-8 form (jsonb refuses its `\u` escape).
 */
export function unstorableText(text: string): string | undefined {
  const bad = UNSTORABLE.exec(text)?.[0];
  if (bad === undefined) return undefined;
  return bad === '\0'
    ? 'contains a NUL character (U+0000), which cannot be stored; remove it'
    : `contains an unpaired UTF-16 surrogate (U+${hex(bad)}), which is not Unicode; send valid UTF-8`;
}

/** The text with its NULs and lone surrogates written as `\uXXXX`, to name it in a message. */
export function printable(text: string): string {
  return text.replace(new RegExp(UNSTORABLE.source, 'gu'), (bad) => `\\u${hex(bad).toLowerCase()}`);
}

function hex(char: string): string {
  return char.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
}
