import { Redis } from 'ioredis';
import pg from 'pg';
import type { PlannedSpec } from './crash-plan.js';

/** How to reach a database, as GET …/databases/{name}/credentials answers. */
export interface Credentials {
  host: string;
  port: number;
  username: string;
  password: string;
  database: string;
}

/** PostgreSQL plans as docs/databases.md gives them. */
const PG_PLANS: Record<string, { memoryMB: number; maxConnections: number }> = {
  small: { memoryMB: 256, maxConnections: 50 },
  medium: { memoryMB: 1024, maxConnections: 100 },
};
/** Units of the parameters the plan sets in MB (the others are in pg_settings' own unit). */
const PG_MB = new Set(['shared_buffers']);

/** Connects with the credentials; what the server runs differently from the spec. */
export async function postgresDifferences(c: Credentials, spec: PlannedSpec): Promise<string[]> {
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    user: c.username,
    password: c.password,
    database: c.database,
    connectionTimeoutMillis: 5000,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const plan = PG_PLANS[spec.plan]!;
    const wanted: Record<string, string | number | boolean> = {
      max_connections: plan.maxConnections,
      shared_buffers: plan.memoryMB / 4,
      ...spec.parameters,
    };
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      'SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)',
      [Object.keys(wanted)],
    );
    const kB: Record<string, number> = { '8kB': 8, kB: 1, MB: 1024 };
    return rows.flatMap(({ name, setting, unit }) => {
      const value = wanted[name]!;
      const running =
        typeof value === 'boolean'
          ? setting === 'on'
          : unit && kB[unit]
            ? (Number(setting) * kB[unit]) / (PG_MB.has(name) ? 1024 : 1)
            : Number(setting);
      return running === value ? [] : [`${name} is ${setting}${unit ?? ''}, the spec says ${value}`];
    });
  } finally {
    await client.end();
  }
}

/** Connects with the credentials; what the server runs differently from the spec (what a customer can see). */
export async function redisDifferences(c: Credentials, spec: PlannedSpec): Promise<string[]> {
  const redis = new Redis({
    host: c.host,
    port: c.port,
    username: c.username,
    password: c.password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 5000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    if ((await redis.ping()) !== 'PONG') return ['PING did not answer PONG'];
    // `databases` is restart-level: the highest index a client can select shows what the server runs.
    const databases = Number(spec.parameters.databases ?? 16);
    const selectable = async (index: number) =>
      redis.select(index).then(
        () => true,
        () => false,
      );
    if ((await selectable(databases - 1)) && !(await selectable(databases))) return [];
    let running = 1;
    while (running < 64 && (await selectable(running))) running++;
    return [`the server has ${running} databases, the spec says ${databases}`];
  } finally {
    redis.disconnect();
  }
}
