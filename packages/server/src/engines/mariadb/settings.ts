import type { InstanceSpec } from '../../drivers/driver.js';
import { MARIADB_COLLATIONS, MARIADB_PARAMETERS } from './catalog.js';

type Value = string | number | boolean;

/**
 * What the server runs with, in the catalog's order (SET GLOBAL applies them in it: the character
 * set before its collation): the customer's parameters over Kumo's defaults, which come from the
 * plan (connections, ½ of its memory for the buffer pool) and utf8mb4.
 */
export function settings(spec: InstanceSpec): Array<[string, Value, 'reload' | 'restart']> {
  const values: Record<string, Value> = {
    max_connections: spec.plan.maxConnections,
    innodb_buffer_pool_size: Math.max(16, Math.floor(spec.plan.memoryMB / 2)),
    ...spec.parameters,
  };
  const charset = values.character_set_server;
  const collation = values.collation_server;
  if (typeof collation === 'string' && charset === undefined)
    values.character_set_server = Object.keys(MARIADB_COLLATIONS).find((c) =>
      MARIADB_COLLATIONS[c]!.includes(collation),
    )!;
  else if (collation === undefined)
    values.collation_server =
      typeof charset === 'string' && charset !== 'utf8mb4'
        ? MARIADB_COLLATIONS[charset]![0]!
        : 'utf8mb4_unicode_ci';
  values.character_set_server ??= 'utf8mb4';
  return MARIADB_PARAMETERS.filter((p) => values[p.name] !== undefined).map((p) => [
    p.name,
    values[p.name]!,
    p.apply,
  ]);
}

const isMB = (name: string) => MARIADB_PARAMETERS.find((p) => p.name === name)?.unit === 'MB';

/** The option a variable is set with in my.cnf (time_zone has its own). */
export function optionName(name: string): string {
  return name === 'time_zone' ? 'default-time-zone' : name;
}

/** As my.cnf takes it. */
export function optionValue(name: string, value: Value): string {
  if (typeof value === 'boolean') return value ? 'ON' : 'OFF';
  if (typeof value === 'number') return isMB(name) ? `${value}M` : String(value);
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** As SET GLOBAL takes it. */
export function sqlValue(name: string, value: Value): Value {
  return typeof value === 'number' && isMB(name) ? value * 1024 * 1024 : value;
}
