import { z } from 'zod';

/** How a parameter change takes effect: a configuration reload, or a server restart. */
export const applyModeSchema = z.enum(['reload', 'restart']);
export type ApplyMode = z.infer<typeof applyModeSchema>;

export const parameterSpecSchema = z
  .strictObject({
    name: z.string(),
    type: z.enum(['integer', 'number', 'boolean', 'enum', 'string']),
    description: z.string(),
    apply: applyModeSchema,
    min: z.number().optional(),
    max: z.number().optional(),
    unit: z.string().optional().meta({ description: 'e.g. "MB", "ms"' }),
    values: z.array(z.string()).optional().meta({ description: 'The allowed values of an enum.' }),
    pattern: z.string().optional().meta({ description: 'A regular expression a string must match.' }),
  })
  .meta({ id: 'ParameterSpec' });
export type ParameterSpec = z.infer<typeof parameterSpecSchema>;

export const planSchema = z
  .strictObject({
    name: z.string(),
    description: z.string(),
    memoryMB: z.number().int(),
    maxConnections: z.number().int(),
    maxStorageGB: z.number().int().meta({ description: 'The largest spec.storageGB this plan allows.' }),
  })
  .meta({ id: 'Plan' });
export type Plan = z.infer<typeof planSchema>;

/** What an engine can do, for core code, the CLI and the console to read instead of its name. */
export const engineCapabilitiesSchema = z
  .strictObject({
    backup: z.boolean().meta({ description: 'Backups, restores and their verification.' }),
    factsFromSnapshot: z.boolean().meta({
      description:
        "The data facts (row counts and checksums) come from the dump's own snapshot, so a verification compares them; otherwise it reports them.",
    }),
    users: z.boolean().meta({
      description:
        'DatabaseUsers: logins of their own on a database, each revoked alone (a service binding).',
    }),
    durability: z.string().meta({
      description:
        'What an acknowledged write survives, in words (e.g. "a crash of the server: at most 1 s of writes lost").',
    }),
  })
  .meta({ id: 'EngineCapabilities' });
export type EngineCapabilities = z.infer<typeof engineCapabilitiesSchema>;

/** The command-line client `kumo db connect` opens, with the password in its environment only. */
export const engineClientSchema = z
  .strictObject({
    program: z.string().meta({ description: 'e.g. "psql".' }),
    args: z.array(z.string()).meta({
      description: 'Arguments, with {host}, {port}, {username} and {database} replaced.',
    }),
    passwordEnv: z
      .string()
      .meta({ description: 'The environment variable the client reads the password from.' }),
    package: z.string().meta({ description: 'The Debian package that has the client.' }),
    check: z
      .strictObject({
        args: z.array(z.string()).meta({ description: 'Appended to args for a one-off command.' }),
        expect: z.string().meta({ description: 'What that command prints when the connection works.' }),
      })
      .optional()
      .meta({
        description:
          "A command `kumo db connect` runs first when the client's exit status does not tell a refused connection (redis-cli exits 0 after an I/O error).",
      }),
  })
  .meta({ id: 'EngineClient' });
export type EngineClient = z.infer<typeof engineClientSchema>;

/** Engine names: lower-case words, as the engine modules register them. */
export const engineNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,30}$/, 'must be an engine name such as the ones GET /v1/engines lists');

export const engineInfoSchema = z
  .strictObject({
    engine: engineNameSchema,
    title: z.string().meta({ description: 'The product, e.g. "PostgreSQL".' }),
    description: z.string(),
    versions: z.array(z.string()).meta({ description: 'Versions this target can run, newest first.' }),
    plans: z.array(planSchema),
    parameters: z.array(parameterSpecSchema),
    capabilities: engineCapabilitiesSchema,
    client: engineClientSchema,
  })
  .meta({ id: 'EngineInfo' });
export type EngineInfo = z.infer<typeof engineInfoSchema>;

/** Checks one parameter value against its spec; returns what is wrong, or undefined. */
export function checkParameter(spec: ParameterSpec, value: unknown): string | undefined {
  switch (spec.type) {
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a ${spec.type}`;
      if (spec.type === 'integer' && !Number.isInteger(value)) return 'must be a whole number';
      const unit = spec.unit ? ` ${spec.unit}` : '';
      if (spec.min !== undefined && value < spec.min) return `must be at least ${spec.min}${unit}`;
      if (spec.max !== undefined && value > spec.max) return `must be at most ${spec.max}${unit}`;
      return undefined;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'enum':
      return typeof value === 'string' && spec.values?.includes(value)
        ? undefined
        : `must be one of ${spec.values?.join(', ')}`;
    case 'string':
      if (typeof value !== 'string') return 'must be a string';
      if (spec.pattern && !new RegExp(spec.pattern).test(value)) return `must match ${spec.pattern}`;
      return undefined;
  }
}
