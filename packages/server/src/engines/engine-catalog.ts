import { isDeepStrictEqual } from 'node:util';
import {
  type ApplyMode,
  type EngineInfo,
  type FieldError,
  type ParameterSpec,
  type Plan,
  checkParameter,
} from '@kumo/api';
import type { DiscoveryOptions } from './engine.js';
import { ENGINES, engineModule } from './registry.js';

/** The part of a Database spec the catalog judges. */
export interface DatabaseSpecLike {
  engine: string;
  version: string;
  plan: string;
  storageGB: number;
  parameters: Record<string, string | number | boolean>;
}

interface Installed {
  version: string;
  /** Where its binaries are, as the engine's local runtime expects. */
  location: string;
}

/**
 * What this host can run: engines and versions discovered from the installed binaries (each
 * engine module finds its own), their plans and the parameters each accepts. Discovery happens
 * once, at start.
 */
export class EngineCatalog {
  private constructor(private readonly installed: ReadonlyMap<string, Installed[]>) {}

  static discover(options: DiscoveryOptions): EngineCatalog {
    return new EngineCatalog(new Map(ENGINES.map((engine) => [engine.name, engine.discover(options)])));
  }

  /**
   * What some target offers, from the engines and versions its agent reported (Target.status):
   * the control plane's view, with no binaries. Engine names no module registers are left out.
   */
  static offering(engines: ReadonlyArray<{ engine: string; versions: readonly string[] }>): EngineCatalog {
    const known = new Map<string, Installed[]>();
    for (const { engine, versions } of engines) {
      if (!engineModule(engine)) continue;
      const merged = new Set([...(known.get(engine) ?? []).map((i) => i.version), ...versions]);
      known.set(
        engine,
        [...merged]
          .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }))
          .map((version) => ({ version, location: '' })),
      );
    }
    return new EngineCatalog(known);
  }

  list(): EngineInfo[] {
    return ENGINES.filter((engine) => (this.installed.get(engine.name) ?? []).length > 0).map((engine) => ({
      engine: engine.name,
      title: engine.title,
      description: engine.description,
      versions: this.installed.get(engine.name)!.map((i) => i.version),
      plans: [...engine.plans],
      parameters: [...engine.parameters],
      capabilities: engine.capabilities,
      client: engine.client,
    }));
  }

  /** Where the engine's binaries are; undefined when the version is not installed. */
  location(engine: string, version: string): string | undefined {
    return this.installed.get(engine)?.find((i) => i.version === version)?.location;
  }

  plan(engine: string, name: string): Plan | undefined {
    return plansOf(engine).find((p) => p.name === name);
  }

  /**
   * Everything wrong with a Database spec here, as field errors (empty when valid). With
   * `installed: false` only what holds on every target (plan, storage, parameters), not whether
   * this catalog has the engine and version.
   */
  validate(spec: DatabaseSpecLike, options: { installed?: boolean } = {}): FieldError[] {
    const errors: FieldError[] = [];
    const module = engineModule(spec.engine);
    if (!module) {
      errors.push({
        field: 'spec.engine',
        message: `${spec.engine} is not an engine Kumo knows; choose one of ${ENGINES.map((e) => e.name).join(', ')}`,
      });
      return errors;
    }
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
    if (plan && errors.length === 0)
      for (const [name, message] of Object.entries(module.planLimits(plan, spec.parameters)))
        errors.push({ field: `spec.parameters.${name}`, message });
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

export function plansOf(engine: string): Plan[] {
  return [...(engineModule(engine)?.plans ?? [])];
}

export function parametersOf(engine: string): ParameterSpec[] {
  return [...(engineModule(engine)?.parameters ?? [])];
}
