import type { EngineProbe } from '../engine-suite.js';
import { mariadbProbe } from './mariadb.js';
import { postgresProbe } from './postgres.js';
import { redisProbe } from './redis.js';

/** Each engine's probe, by engine name, for suites that run over every engine. */
export const PROBES: Readonly<Record<string, EngineProbe>> = Object.fromEntries(
  [postgresProbe, redisProbe, mariadbProbe].map((probe) => [probe.engine, probe]),
);
