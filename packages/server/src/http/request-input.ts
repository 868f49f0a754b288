import { type FieldError, PROBLEM_TYPES } from '@kumo/api';
import type { MiddlewareHandler } from 'hono';
import { MalformedRequestError } from '../errors.js';
import { printable, unstorableText, validationError } from '../resources/validation.js';
import { HttpProblem } from './problem.js';
import type { AppEnv } from './router.js';

/**
 * The deepest nesting a JSON request body may have: the body is level 1, each object or array in it
 * one level more. Kumo's own documents need a handful; the limit keeps what handles a body (merge
 * patches, validation, PostgreSQL's jsonb) far from any stack limit.
 */
export const MAX_JSON_DEPTH = 64;

/** A refusal names at most this many fields. */
const MAX_FIELDS = 20;

/** What a route takes as its request body, from its OpenAPI `request.body`. */
export interface BodySpec {
  /** e.g. ["application/json"]; lower case, without parameters. */
  mediaTypes: string[];
  /** Whether an empty body is refused. */
  required: boolean;
}

/** A route that declares no body still refuses a body that is not JSON. */
const NO_BODY: BodySpec = { mediaTypes: ['application/json'], required: false };

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Route middleware that runs before the route's access is decided (which may read the store) and
 * refuses what must never reach the store, naming the offending field:
 * - 422 `validation`: a path parameter (`path.project`), a query parameter's name or value
 *   (`query.labelSelector`), or a string or member name in the body (`spec.displayName`,
 *   `metadata.labels.a\u0000`) that holds a NUL or an unpaired surrogate; a body nested deeper than
 *   MAX_JSON_DEPTH (the field where it goes too deep);
 * - 415 `unsupported-media-type`: a non-empty body not of one of the route's media types;
 * - 400 `malformed-request`: a body that is not UTF-8 or not JSON, or an empty one where the
 *   route needs one.
 * Reads the body once; the route reads the same body afterwards. Never touches the store.
 */
export function checkRequestInput(body: BodySpec = NO_BODY): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const fields: FieldError[] = [];
    for (const [name, value] of Object.entries(c.req.param() as Record<string, string>)) {
      const problem = unstorableText(value);
      if (problem) fields.push({ field: `path.${name}`, message: problem });
    }
    for (const [name, values] of Object.entries(c.req.queries())) {
      const field = `query.${printable(name)}`;
      const nameProblem = unstorableText(name);
      const problem = values.map(unstorableText).find((p) => p !== undefined);
      if (nameProblem) fields.push({ field, message: `its name ${nameProblem}` });
      else if (problem) fields.push({ field, message: problem });
    }
    if (fields.length > 0) throw validationError('request', fields);
    checkBody(await c.req.arrayBuffer(), c.req.header('content-type'), body);
    await next();
  };
}

function checkBody(bytes: ArrayBuffer, contentType: string | undefined, spec: BodySpec): void {
  if (bytes.byteLength === 0) {
    if (!spec.required) return;
    throw new MalformedRequestError(
      `This request needs a body: send JSON with "Content-Type: ${spec.mediaTypes.join('" or "')}".`,
    );
  }
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (!spec.mediaTypes.includes(mediaType)) {
    throw new HttpProblem(
      415,
      PROBLEM_TYPES.unsupportedMediaType,
      'Unsupported media type',
      `Send the body as JSON with "Content-Type: ${spec.mediaTypes.join('" or "')}".`,
    );
  }
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new MalformedRequestError('The request body is not UTF-8. Send JSON encoded as UTF-8.');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MalformedRequestError('The request body is not valid JSON. Check quoting and commas.');
  }
  const fields = unstorableFields(value);
  if (fields.length > 0) throw validationError('request body', fields);
}

/**
 * The fields of a parsed JSON body that PostgreSQL could not store or that nest too deep, in
 * document order, at most MAX_FIELDS. Iterative: a deep body cannot exhaust the stack here.
 */
function unstorableFields(body: unknown): FieldError[] {
  const found: FieldError[] = [];
  // Popped from the end: children are pushed in reverse so that fields come out in document order.
  const pending: Array<{ value: unknown; path: string[]; keyProblem?: string | undefined }> = [
    { value: body, path: [] },
  ];
  while (pending.length > 0 && found.length < MAX_FIELDS) {
    const { value, path, keyProblem } = pending.pop()!;
    const field = path.join('.');
    if (keyProblem) {
      found.push({ field, message: `its name ${keyProblem}` });
    } else if (typeof value === 'string') {
      const problem = unstorableText(value);
      if (problem) found.push({ field, message: problem });
    } else if (typeof value === 'object' && value !== null) {
      if (path.length >= MAX_JSON_DEPTH) {
        found.push({
          field,
          message: `nests deeper than ${MAX_JSON_DEPTH} levels, the most a request body may have`,
        });
        continue;
      }
      const children = Array.isArray(value)
        ? value.map((v, i) => [String(i), v] as const)
        : Object.entries(value);
      for (let i = children.length - 1; i >= 0; i--) {
        const [key, child] = children[i]!;
        pending.push({ value: child, path: [...path, printable(key)], keyProblem: unstorableText(key) });
      }
    }
  }
  return found;
}
