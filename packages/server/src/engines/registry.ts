import { DriverError } from '../drivers/driver.js';
import type { EngineModule } from './engine.js';
import { mariadbEngine } from './mariadb/index.js';
import { postgresEngine } from './postgres/index.js';
import { redisEngine } from './redis/index.js';

/**
 * Every engine Kumo knows, registered once. The API, the agent and (through GET /v1/engines) the
 * CLI and the console learn the engines from here; a new engine is a folder and a line below.
 */
export const ENGINES: readonly EngineModule[] = [postgresEngine, redisEngine, mariadbEngine];

/** The module of an engine name; undefined for a name no module registers. */
export function engineModule(name: string): EngineModule | undefined {
  return ENGINES.find((engine) => engine.name === name);
}

/** The module of an engine name; a terminal DriverError when no module registers it. */
export function requireEngine(name: string): EngineModule {
  const engine = engineModule(name);
  if (!engine)
    throw new DriverError(
      'EngineUnavailable',
      `${name || 'An unnamed engine'} is not an engine this Kumo knows (${ENGINES.map((e) => e.name).join(', ')}).`,
      true,
    );
  return engine;
}
