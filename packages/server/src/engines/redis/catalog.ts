import type { ParameterSpec, Plan } from '@kumo/api';

/** Plans for Redis: memory becomes maxmemory. */
export const REDIS_PLANS: Plan[] = [
  {
    name: 'small',
    description: '128 MB memory, 1,000 clients',
    memoryMB: 128,
    maxConnections: 1000,
    maxStorageGB: 10,
  },
  {
    name: 'medium',
    description: '512 MB memory, 5,000 clients',
    memoryMB: 512,
    maxConnections: 5000,
    maxStorageGB: 50,
  },
  {
    name: 'large',
    description: '2 GB memory, 10,000 clients',
    memoryMB: 2048,
    maxConnections: 10000,
    maxStorageGB: 100,
  },
];

/** The Redis settings customers may change. "reload" ones are applied live with CONFIG SET. */
export const REDIS_PARAMETERS: ParameterSpec[] = [
  {
    name: 'maxmemory-policy',
    type: 'enum',
    description: 'What to evict when memory is full.',
    apply: 'reload',
    values: [
      'noeviction',
      'allkeys-lru',
      'allkeys-lfu',
      'allkeys-random',
      'volatile-lru',
      'volatile-lfu',
      'volatile-random',
      'volatile-ttl',
    ],
  },
  {
    name: 'timeout',
    type: 'integer',
    description: 'Close idle clients after this many seconds (0 = never).',
    apply: 'reload',
    min: 0,
    max: 86400,
    unit: 's',
  },
  {
    name: 'maxclients',
    type: 'integer',
    description: "Maximum clients (default: the plan's).",
    apply: 'reload',
    min: 1,
    max: 50000,
  },
  {
    name: 'appendonly',
    type: 'boolean',
    description:
      'Append-only file persistence (default: true). false keeps only snapshots: a crash loses the writes since the last one.',
    apply: 'reload',
  },
  {
    name: 'appendfsync',
    type: 'enum',
    description:
      'When the append-only file is flushed to disk (default: everysec, losing at most a second of writes in a crash; always: every write, slower).',
    apply: 'reload',
    values: ['always', 'everysec', 'no'],
  },
  {
    name: 'notify-keyspace-events',
    type: 'string',
    description: 'Keyspace notifications (e.g. "Ex").',
    apply: 'reload',
    pattern: '^[KEg$lshzxetmdA]*$',
  },
  {
    name: 'slowlog-log-slower-than',
    type: 'integer',
    description: 'Log commands slower than this (µs, -1 = off).',
    apply: 'reload',
    min: -1,
    max: 60_000_000,
    unit: 'us',
  },
  {
    name: 'databases',
    type: 'integer',
    description: 'Number of logical databases.',
    apply: 'restart',
    min: 1,
    max: 64,
  },
];
