import { isDeepStrictEqual } from 'node:util';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import {
  type ApplyMode,
  type EngineInfo,
  type FieldError,
  type ParameterSpec,
  type Plan,
  checkParameter,
} from '@kumo/api';
import { type FindBinariesOptions, listPostgresBinaries } from '../store/postgres-binaries.js';
import { POSTGRES_PARAMETERS, POSTGRES_PLANS } from './postgres-engine.js';
import { REDIS_PARAMETERS, REDIS_PLANS } from './redis-engine.js';

export type EngineName = EngineInfo['engine'];

/** The part of a Database spec the catalog judges. */
export interface DatabaseSpecLike {
  engine: EngineName;
  version: string;
  plan: string;
  storageGB: number;
  parameters: Record<string, string | number | boolean>;
}

interface Installed {
  version: string;
  /** postgres: the bin directory; redis: the redis-server binary. */
  location: string;
}

/**
 * What this host can run: engines and versions discovered from the installed binaries, their plans
 * and the parameters each accepts. Discovery happens once, at start.
 */
export class EngineCatalog {
  private constructor(private readonly installed: ReadonlyMap<EngineName, Installed[]>) {}

  static discover(options: FindBinariesOptions & { path: string }): EngineCatalog {
    const postgres = listPostgresBinaries(options)
      .sort((a, b) => b.majorVersion - a.majorVersion)
      .map((b) => ({ version: String(b.majorVersion), location: b.binDir }));
    const redis = findRedis(options.path);
    return new EngineCatalog(
      new Map([
        ['postgres', postgres],
        ['redis', redis ? [redis] : []],
      ]),
    );
  }

  /**
   * What some target offers, from the engines and versions its agent reported (Target.status):
   * the control plane's view, with no binaries. Unknown engine names are left out.
   */
  static offering(engines: ReadonlyArray<{ engine: string; versions: readonly string[] }>): EngineCatalog {
    const known = new Map<EngineName, Installed[]>();
    for (const { engine, versions } of engines) {
      if (engine !== 'postgres' && engine !== 'redis') continue;
      const merged = new Set([...(known.get(engine) ?? []).map((i) => i.version), ...versions]);
      known.set(
        engine,
        [...merged].sort((a, b) => Number(b) - Number(a)).map((version) => ({ version, location: '' })),
      );
    }
    return new EngineCatalog(known);
  }

  list(): EngineInfo[] {
    return (['postgres', 'redis'] as const)
      .filter((engine) => (this.installed.get(engine) ?? []).length > 0)
      .map((engine) => ({
        engine,
        description: engine === 'postgres' ? 'PostgreSQL relational database' : 'Redis in-memory data store',
        versions: this.installed.get(engine)!.map((i) => i.version),
        plans: plansOf(engine),
        parameters: parametersOf(engine),
      }));
  }

  /** Where the engine's binaries are; undefined when the version is not installed. */
  location(engine: EngineName, version: string): string | undefined {
    return this.installed.get(engine)?.find((i) => i.version === version)?.location;
  }

  plan(engine: EngineName, name: string): Plan | undefined {
    return plansOf(engine).find((p) => p.name === name);
  }

  /**
   * Everything wrong with a Database spec here, as field errors (empty when valid). With
   * `installed: false` only what holds on every target (plan, storage, parameters), not whether
   * this catalog has the engine and version.
   */
  validate(spec: DatabaseSpecLike, options: { installed?: boolean } = {}): FieldError[] {
    const errors: FieldError[] = [];
    if (options.installed !== false) {
      const versions = (this.installed.get(spec.engine) ?? []).map((i) => i.version);
      if (versions.length === 0) {
        errors.push({ field: 'spec.engine', message: `${spec.engine} is not installed on this platform` });
        return errors;
      }
      if (!versions.includes(spec.version)) {
        errors.push({
          field: 'spec.version',
          message: `${spec.engine} ${spec.version} is not available; choose one of ${versions.join(', ')}`,
        });
      }
    }
    const plan = this.plan(spec.engine, spec.plan);
    if (!plan) {
      errors.push({
        field: 'spec.plan',
        message: `unknown plan; choose one of ${plansOf(spec.engine)
          .map((p) => p.name)
          .join(', ')}`,
      });
    } else if (spec.storageGB > plan.maxStorageGB) {
      errors.push({
        field: 'spec.storageGB',
        message: `plan ${plan.name} allows at most ${plan.maxStorageGB} GB; choose a larger plan or less storage`,
      });
    }
    const specs = parametersOf(spec.engine);
    for (const [name, value] of Object.entries(spec.parameters)) {
      const parameter = specs.find((p) => p.name === name);
      const problem = parameter
        ? checkParameter(parameter, value)
        : `is not a ${spec.engine} parameter Kumo manages; see GET /v1/engines`;
      if (problem) errors.push({ field: `spec.parameters.${name}`, message: problem });
    }
    return errors;
  }

  /**
   * How a change from `before` to `after` takes effect, field by field: "restart" for restart-only
   * parameters, the plan and stopping/starting; "reload" for reloadable parameters and the ACL;
   * "none" for the rest (labels, storage quota). The overall effect is the strongest one.
   */
  describeChange(
    before: DatabaseSpecLike & ChangeExtras,
    after: DatabaseSpecLike & ChangeExtras,
  ): ChangeDescription {
    const changes: ChangeDescription['changes'] = [];
    if (before.plan !== after.plan) changes.push({ field: 'spec.plan', effect: 'restart' });
    if (Boolean(before.stopped) !== Boolean(after.stopped))
      changes.push({ field: 'spec.stopped', effect: 'restart' });
    if (!isDeepStrictEqual(before.acl ?? [], after.acl ?? []))
      changes.push({ field: 'spec.acl', effect: 'reload' });
    if (before.storageGB !== after.storageGB) changes.push({ field: 'spec.storageGB', effect: 'none' });
    const specs = parametersOf(after.engine);
    for (const name of [
      ...new Set([...Object.keys(before.parameters), ...Object.keys(after.parameters)]),
    ].sort()) {
      if (before.parameters[name] === after.parameters[name]) continue;
      changes.push({
        field: `spec.parameters.${name}`,
        effect: specs.find((p) => p.name === name)?.apply ?? 'restart',
      });
    }
    const effect = changes.some((c) => c.effect === 'restart')
      ? 'restart'
      : changes.some((c) => c.effect === 'reload')
        ? 'reload'
        : 'none';
    return { effect, changes };
  }
}

export interface ChangeExtras {
  acl?: unknown;
  stopped?: boolean;
}

export interface ChangeDescription {
  effect: ApplyMode | 'none';
  changes: Array<{ field: string; effect: ApplyMode | 'none' }>;
}

export function plansOf(engine: EngineName): Plan[] {
  return engine === 'postgres' ? POSTGRES_PLANS : REDIS_PLANS;
}

export function parametersOf(engine: EngineName): ParameterSpec[] {
  return engine === 'postgres' ? POSTGRES_PARAMETERS : REDIS_PARAMETERS;
}

function findRedis(path: string): Installed | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const binary = join(dir, 'redis-server');
    if (!existsSync(binary)) continue;
    try {
      const out = execFileSync(binary, ['--version'], { stdio: 'pipe' }).toString();
      const match = /v=(\d+)\./.exec(out);
      if (match) return { version: match[1]!, location: binary };
    } catch {
      // unusable: skipped
    }
  }
  return undefined;
}
