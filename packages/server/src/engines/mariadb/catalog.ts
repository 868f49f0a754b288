import type { ParameterSpec, Plan } from '@kumo/api';

/** Plans for MariaDB: memory sets innodb_buffer_pool_size (½), connections max_connections. */
export const MARIADB_PLANS: Plan[] = [
  {
    name: 'small',
    description: '256 MB memory, 100 connections',
    memoryMB: 256,
    maxConnections: 100,
    maxStorageGB: 20,
  },
  {
    name: 'medium',
    description: '1 GB memory, 300 connections',
    memoryMB: 1024,
    maxConnections: 300,
    maxStorageGB: 100,
  },
  {
    name: 'large',
    description: '4 GB memory, 1,000 connections',
    memoryMB: 4096,
    maxConnections: 1000,
    maxStorageGB: 500,
  },
];

/** The SQL modes MariaDB 10.11 knows; sql_mode must be a comma-separated list of these. */
const SQL_MODES = [
  'ALLOW_INVALID_DATES',
  'ANSI',
  'ANSI_QUOTES',
  'DB2',
  'EMPTY_STRING_IS_NULL',
  'ERROR_FOR_DIVISION_BY_ZERO',
  'HIGH_NOT_PRECEDENCE',
  'IGNORE_BAD_TABLE_OPTIONS',
  'IGNORE_SPACE',
  'MAXDB',
  'MSSQL',
  'MYSQL323',
  'MYSQL40',
  'NO_AUTO_CREATE_USER',
  'NO_AUTO_VALUE_ON_ZERO',
  'NO_BACKSLASH_ESCAPES',
  'NO_DIR_IN_CREATE',
  'NO_ENGINE_SUBSTITUTION',
  'NO_FIELD_OPTIONS',
  'NO_KEY_OPTIONS',
  'NO_TABLE_OPTIONS',
  'NO_UNSIGNED_SUBTRACTION',
  'NO_ZERO_DATE',
  'NO_ZERO_IN_DATE',
  'ONLY_FULL_GROUP_BY',
  'ORACLE',
  'PAD_CHAR_TO_FULL_LENGTH',
  'PIPES_AS_CONCAT',
  'POSTGRESQL',
  'REAL_AS_FLOAT',
  'SIMULTANEOUS_ASSIGNMENT',
  'STRICT_ALL_TABLES',
  'STRICT_TRANS_TABLES',
  'TIME_ROUND_FRACTIONAL',
  'TRADITIONAL',
];
const SQL_MODE = `(${SQL_MODES.join('|')})`;

/** Character sets customers may choose, and their collations Kumo offers (the first is the set's default). */
export const MARIADB_COLLATIONS: Readonly<Record<string, readonly string[]>> = {
  utf8mb4: [
    'utf8mb4_general_ci',
    'utf8mb4_unicode_ci',
    'utf8mb4_unicode_520_ci',
    'utf8mb4_unicode_nopad_ci',
    'utf8mb4_bin',
  ],
  utf8mb3: ['utf8mb3_general_ci', 'utf8mb3_unicode_ci', 'utf8mb3_unicode_520_ci', 'utf8mb3_bin'],
  latin1: ['latin1_swedish_ci', 'latin1_general_ci', 'latin1_general_cs', 'latin1_german2_ci', 'latin1_bin'],
  ascii: ['ascii_general_ci', 'ascii_bin'],
  binary: ['binary'],
};

const mb = (name: string, description: string, min: number, max: number): ParameterSpec => ({
  name,
  type: 'integer',
  description,
  apply: 'reload',
  min,
  max,
  unit: 'MB',
});

const seconds = (name: string, description: string, min: number): ParameterSpec => ({
  name,
  type: 'integer',
  description,
  apply: 'reload',
  min,
  max: 31_536_000,
  unit: 's',
});

/**
 * The MariaDB settings customers may change. "reload" ones are dynamic in MariaDB 10.11 and applied
 * live with SET GLOBAL (to new sessions; a session keeps the values it started with).
 */
export const MARIADB_PARAMETERS: ParameterSpec[] = [
  {
    name: 'max_connections',
    type: 'integer',
    description: "Maximum concurrent client connections (default: the plan's).",
    apply: 'reload',
    min: 10,
    max: 10000,
  },
  mb(
    'innodb_buffer_pool_size',
    "InnoDB's cache of data and indexes (default: ½ of the plan's memory; at most the plan's memory).",
    16,
    65536,
  ),
  mb('innodb_log_file_size', 'Size of the InnoDB redo log (default: 96 MB); resized online.', 4, 16384),
  seconds('wait_timeout', 'Close non-interactive connections idle this long (default: 28800).', 1),
  seconds('interactive_timeout', 'Close interactive connections idle this long (default: 28800).', 1),
  mb('max_allowed_packet', 'Largest packet or row a client may send or receive (default: 16 MB).', 1, 1024),
  {
    name: 'long_query_time',
    type: 'number',
    description: 'Queries slower than this go to the slow query log (seconds, default: 10).',
    apply: 'reload',
    min: 0,
    max: 31_536_000,
    unit: 's',
  },
  {
    name: 'slow_query_log',
    type: 'boolean',
    description: "Log slow queries to the server's log (default: false).",
    apply: 'reload',
  },
  {
    name: 'sql_mode',
    type: 'string',
    description:
      'Comma-separated SQL modes (default: STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION; "" for none).',
    apply: 'reload',
    pattern: `^(${SQL_MODE}(,${SQL_MODE})*)?$`,
  },
  {
    name: 'time_zone',
    type: 'string',
    description:
      'Default time zone of sessions: SYSTEM, an offset such as +02:00, or a name such as Europe/Paris.',
    apply: 'reload',
    pattern: '^(SYSTEM|[+-](0?[0-9]|1[0-4]):[0-5][0-9]|[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2})$',
  },
  mb('tmp_table_size', 'Largest in-memory temporary table (default: 16 MB).', 1, 4096),
  mb(
    'max_heap_table_size',
    'Largest MEMORY table, and a limit on in-memory temporary tables (default: 16 MB).',
    1,
    4096,
  ),
  seconds('lock_wait_timeout', 'Wait at most this long for a metadata lock (default: 86400).', 1),
  {
    ...seconds('innodb_lock_wait_timeout', 'Wait at most this long for an InnoDB row lock (default: 50).', 1),
    max: 100_000_000,
  },
  {
    name: 'max_statement_time',
    type: 'number',
    description: 'Abort queries running longer than this (seconds, 0 = never; default: 0).',
    apply: 'reload',
    min: 0,
    max: 31_536_000,
    unit: 's',
  },
  {
    name: 'group_concat_max_len',
    type: 'integer',
    description: 'Longest result of GROUP_CONCAT() (bytes, default: 1 MB).',
    apply: 'reload',
    min: 4,
    max: 1_073_741_824,
    unit: 'B',
  },
  {
    name: 'event_scheduler',
    type: 'boolean',
    description: 'Run scheduled events (CREATE EVENT) at their times (default: false).',
    apply: 'reload',
  },
  {
    name: 'character_set_server',
    type: 'enum',
    description: 'Character set of new databases and tables (default: utf8mb4).',
    apply: 'reload',
    values: Object.keys(MARIADB_COLLATIONS),
  },
  {
    name: 'collation_server',
    type: 'enum',
    description:
      'Collation of new databases and tables (default: utf8mb4_unicode_ci); must belong to character_set_server.',
    apply: 'reload',
    values: Object.values(MARIADB_COLLATIONS).flat(),
  },
  {
    ...mb('innodb_log_buffer_size', "InnoDB's buffer for redo log writes (default: 16 MB).", 2, 1024),
    apply: 'restart',
  },
  {
    name: 'innodb_ft_min_token_size',
    type: 'integer',
    description:
      'Shortest word InnoDB full-text indexes keep (default: 3; rebuild the indexes after a change).',
    apply: 'restart',
    min: 1,
    max: 16,
  },
];
