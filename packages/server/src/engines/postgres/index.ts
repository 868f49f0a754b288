import { listPostgresBinaries } from '../../store/postgres-binaries.js';
import type { EngineModule } from '../engine.js';
import { POSTGRES_PARAMETERS, POSTGRES_PLANS } from './catalog.js';
import { PostgresLocal } from './local.js';

/** PostgreSQL: one cluster per database, owned by a login role named after it. */
export const postgresEngine: EngineModule = {
  name: 'postgres',
  title: 'PostgreSQL',
  description: 'PostgreSQL relational database',
  plans: POSTGRES_PLANS,
  parameters: POSTGRES_PARAMETERS,
  capabilities: {
    backup: true,
    factsFromSnapshot: true,
    users: true,
    durability: 'every committed transaction (fsync on commit)',
  },
  client: {
    program: 'psql',
    args: ['-h', '{host}', '-p', '{port}', '-U', '{username}', '-d', '{database}'],
    passwordEnv: 'PGPASSWORD',
    package: 'postgresql-client',
  },
  planLimits(plan, parameters) {
    const problems: Record<string, string> = {};
    const buffers = parameters.shared_buffers;
    if (typeof buffers === 'number' && buffers > plan.memoryMB)
      problems.shared_buffers = `must be at most the plan's memory (${plan.memoryMB} MB on plan ${plan.name}); choose a larger plan or a smaller value`;
    return problems;
  },
  discover(options) {
    return listPostgresBinaries(options)
      .sort((a, b) => b.majorVersion - a.majorVersion)
      .map((b) => ({ version: String(b.majorVersion), location: b.binDir }));
  },
  local: new PostgresLocal(),
  backup: {
    extension: 'dump',
    describeFacts: (facts) => `${facts.tables.length} table(s), row counts and checksums match`,
  },
  connectionUri: ({ host, port, username, password, database }) =>
    `postgresql://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`,
};
