import { SeededRandom } from './seeded-random.js';

export type Engine = 'postgres' | 'redis';
type Value = string | number | boolean;

export interface AclEntry {
  cidr: string;
  description?: string;
}

/** The part of a Database spec the plan sets, as the API must keep it. */
export interface PlannedSpec {
  engine: Engine;
  version: string;
  plan: string;
  storageGB: number;
  parameters: Record<string, Value>;
  acl: AclEntry[];
  stopped: boolean;
}

/**
 * One request of the stream. Every operation is eventually acknowledged: one whose answer a kill
 * took away is sent again (creates carry an idempotency key; the others are idempotent or, like a
 * rotation, harmless to repeat). `before`/`after` are the database's spec around it.
 */
export type Operation =
  | { kind: 'create'; db: string; after: PlannedSpec }
  | {
      kind: 'update';
      db: string;
      patch: Partial<PlannedSpec>;
      before: PlannedSpec;
      after: PlannedSpec;
    }
  | { kind: 'delete'; db: string; before: PlannedSpec }
  | { kind: 'backup'; db: string; backup: string }
  | { kind: 'rotate'; db: string };

export interface Wave {
  /** Waited before the wave is sent: time for the agent to be in the middle of something. */
  pauseMs: number;
  /** Sent at the same time, each on a different database. */
  ops: Operation[];
  /** kill -9 of `kumo up` afterMs after the wave was sent (answered or not), restarted downMs later. */
  kill?: { afterMs: number; downMs: number };
}

export interface CrashPlan {
  seed: number;
  waves: Wave[];
  /** The databases there in the end, with their specs. */
  live: Map<string, PlannedSpec>;
  /** Databases created and then deleted: gone in the end. */
  deleted: string[];
  backups: Array<{ name: string; db: string }>;
}

export interface CrashPlanLimits {
  /** How many operations, drawn in this range. Default [24, 36]. */
  operations?: readonly [number, number];
  /** How many kills, drawn in this range. Default [3, 5]. */
  kills?: readonly [number, number];
  /** Databases alive at once, at most. Default 5. */
  maxLive?: number;
  /** Databases created in all, at most. Default 10. */
  maxCreates?: number;
}

/** Values the plan sets, per engine: reload-level and restart-level parameters of both engines. */
const PARAMETERS: Record<Engine, Record<string, readonly Value[]>> = {
  postgres: {
    work_mem: [1024, 4096, 16384],
    statement_timeout: [0, 30000, 60000],
    log_connections: [true, false],
    max_connections: [30, 40, 60],
    shared_buffers: [16, 32],
  },
  redis: {
    'maxmemory-policy': ['noeviction', 'allkeys-lru', 'volatile-ttl'],
    timeout: [0, 60, 300],
    appendonly: [true, false],
    databases: [8, 16, 32],
  },
};
const VERSION: Record<Engine, string> = { postgres: '15', redis: '7' };
/** The test connects from here, so every ACL keeps it. */
const LOCAL: AclEntry = { cidr: '127.0.0.1/32', description: 'the test' };
const OTHER_NETWORKS: AclEntry[] = [
  { cidr: '10.0.0.0/8' },
  { cidr: '192.168.0.0/16', description: 'office' },
  { cidr: '203.0.113.0/24', description: 'partner' },
  { cidr: '::1/128' },
];

/**
 * The stream of operations and kill moments for a seed: the same seed gives the same plan. Starts
 * with a PostgreSQL and a Redis database; each wave touches 1–3 different databases; names are
 * never reused (a deleted name may still be Deleting).
 */
export function crashPlan(seed: number, limits: CrashPlanLimits = {}): CrashPlan {
  const random = new SeededRandom(seed);
  const [minOps, maxOps] = limits.operations ?? [24, 36];
  const [minKills, maxKills] = limits.kills ?? [3, 5];
  const maxLive = limits.maxLive ?? 5;
  const maxCreates = limits.maxCreates ?? 10;
  const total = random.int(minOps, maxOps);

  const live = new Map<string, PlannedSpec>();
  const deleted: string[] = [];
  const backups: CrashPlan['backups'] = [];
  let created = 0;
  const create = (engine: Engine): Operation => {
    const db = `${engine === 'postgres' ? 'pg' : 'rd'}-${created++}`;
    const spec: PlannedSpec = {
      engine,
      version: VERSION[engine],
      plan: 'small',
      storageGB: 1,
      parameters: parameters(random, engine, random.int(0, 2)),
      acl: acl(random),
      stopped: false,
    };
    live.set(db, spec);
    return { kind: 'create', db, after: spec };
  };
  const update = (db: string, patch: Partial<PlannedSpec>): Operation => {
    const before = live.get(db)!;
    const after = { ...before, ...patch, parameters: { ...before.parameters, ...patch.parameters } };
    live.set(db, after);
    return { kind: 'update', db, patch, before, after };
  };

  const waves: Wave[] = [{ pauseMs: 0, ops: [create('postgres'), create('redis')] }];
  let planned = 2;
  while (planned < total) {
    const ops: Operation[] = [];
    const touched = new Set<string>();
    const size = Math.min(random.int(1, 3), total - planned);
    for (let i = 0; i < size; i++) {
      const free = [...live.keys()].filter((db) => !touched.has(db));
      const canCreate = live.size < maxLive && created < maxCreates;
      type Kind = 'create' | 'parameters' | 'acl' | 'stopped' | 'plan' | 'delete' | 'backup' | 'rotate';
      const choices: Array<readonly [Kind, number]> = [];
      if (canCreate) choices.push(['create', 3]);
      if (free.length > 0)
        choices.push(
          ['parameters', 3],
          ['acl', 2],
          ['stopped', 1.2],
          ['plan', 0.7],
          ['backup', 2],
          ['rotate', 1],
        );
      if (free.length > 0 && live.size >= 3) choices.push(['delete', 1]);
      if (choices.length === 0) break;
      const kind = random.weighted(choices);
      if (kind === 'create') {
        const op = create(random.chance(0.6) ? 'postgres' : 'redis');
        touched.add(op.db);
        ops.push(op);
        continue;
      }
      // Backups mostly of running databases: a stopped one's backup only fails at once.
      const running = free.filter((name) => !live.get(name)!.stopped);
      const db = random.pick(kind === 'backup' && running.length > 0 && random.chance(0.8) ? running : free);
      touched.add(db);
      const spec = live.get(db)!;
      switch (kind) {
        case 'parameters':
          ops.push(update(db, { parameters: parameters(random, spec.engine, random.int(1, 2)) }));
          break;
        case 'acl':
          ops.push(update(db, { acl: acl(random) }));
          break;
        case 'stopped':
          ops.push(update(db, { stopped: !spec.stopped }));
          break;
        case 'plan':
          ops.push(update(db, { plan: spec.plan === 'small' ? 'medium' : 'small' }));
          break;
        case 'delete':
          live.delete(db);
          deleted.push(db);
          ops.push({ kind: 'delete', db, before: spec });
          break;
        case 'backup': {
          const backup = `bk-${backups.length}`;
          backups.push({ name: backup, db });
          ops.push({ kind: 'backup', db, backup });
          break;
        }
        case 'rotate':
          ops.push({ kind: 'rotate', db });
          break;
      }
    }
    planned += ops.length;
    waves.push({ pauseMs: random.int(0, 800), ops });
  }

  // Kill moments: some while requests are in flight, most while the agent works on them.
  const candidates = waves.map((_, i) => i);
  const kills = random.int(minKills, Math.min(maxKills, waves.length));
  for (let k = 0; k < kills; k++) {
    const index = candidates.splice(random.int(0, candidates.length - 1), 1)[0]!;
    waves[index]!.kill = {
      afterMs: random.chance(0.3) ? random.int(0, 50) : random.int(100, 3000),
      downMs: random.int(0, 300),
    };
  }
  return { seed, waves, live, deleted, backups };
}

/** One line for a report: what the operation asks. */
export function describeOperation(op: Operation): string {
  switch (op.kind) {
    case 'create':
      return `create ${op.db} (${op.after.engine}, parameters ${JSON.stringify(op.after.parameters)})`;
    case 'update':
      return `update ${op.db} ${JSON.stringify(op.patch)}`;
    case 'delete':
      return `delete ${op.db}`;
    case 'backup':
      return `backup ${op.backup} of ${op.db}`;
    case 'rotate':
      return `rotate the credentials of ${op.db}`;
  }
}

function parameters(random: SeededRandom, engine: Engine, count: number): Record<string, Value> {
  const names = random.subset(Object.keys(PARAMETERS[engine]), 0.5).slice(0, count);
  return Object.fromEntries(names.map((name) => [name, random.pick(PARAMETERS[engine][name]!)]));
}

function acl(random: SeededRandom): AclEntry[] {
  return [LOCAL, ...random.subset(OTHER_NETWORKS, 0.4)];
}

/** The plan, one wave a line, for the log of a run. */
export function describePlan(plan: CrashPlan): string {
  return plan.waves
    .map(
      (wave, i) =>
        `  wave ${i} (after ${wave.pauseMs} ms): ${wave.ops.map(describeOperation).join(' | ')}` +
        (wave.kill ? ` — kill -9 ${wave.kill.afterMs} ms after, down ${wave.kill.downMs} ms` : ''),
    )
    .join('\n');
}
