/**
 * JSON Merge Patch (RFC 7386): objects merge recursively, null removes a member, anything else
 * (arrays included) replaces. Pure; never mutates its arguments. Recurses once per level of the
 * patch's nesting, so callers bound it: the API refuses request bodies nested over 64 levels.
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const result: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
