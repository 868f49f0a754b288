import { type EngineInfo, type Plan, databaseAccessSchema, databaseKind } from '@kumo/api';
import { z } from 'zod';
import { planIdOf, serviceIdOf } from './osb-ids.js';

/** What a provision or update may set of the Database, with the API's own schemas. */
export const instanceParametersSchema = databaseKind.spec
  .pick({ version: true, storageGB: true, parameters: true, acl: true })
  .partial();
export type InstanceParameters = z.infer<typeof instanceParametersSchema>;

/** What a bind may set of the DatabaseUser. */
export const bindingParametersSchema = z.strictObject({ access: databaseAccessSchema.optional() });

/** A plan of the catalog, resolved back to Kumo's names. */
export interface CatalogPlan {
  engine: EngineInfo;
  plan: Plan;
}

const parameterSchemas = {
  service_instance: {
    create: { parameters: jsonSchema(instanceParametersSchema) },
    update: { parameters: jsonSchema(instanceParametersSchema.omit({ version: true })) },
  },
  service_binding: { create: { parameters: jsonSchema(bindingParametersSchema) } },
};

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-04/schema#',
    ...z.toJSONSchema(schema, { target: 'draft-4', io: 'input' }),
  };
}

/**
 * The OSB catalog of what the platform offers: one service per engine, one plan per Kumo plan,
 * with ids derived from the names (stable across restarts and Kumos). Engines that declare users
 * are bindable (a binding is a DatabaseUser).
 */
export function catalogOf(engines: readonly EngineInfo[]) {
  return {
    services: engines.map((e) => ({
      id: serviceIdOf(e.engine),
      name: e.engine,
      description: e.description,
      bindable: e.capabilities.users,
      instances_retrievable: true,
      bindings_retrievable: true,
      plan_updateable: true,
      tags: [e.engine, 'kumo'],
      metadata: { displayName: e.title, versions: e.versions },
      plans: e.plans.map((p) => ({
        id: planIdOf(e.engine, p.name),
        name: p.name,
        description: p.description,
        free: false,
        bindable: e.capabilities.users,
        plan_updateable: true,
        metadata: { memoryMB: p.memoryMB, maxConnections: p.maxConnections, maxStorageGB: p.maxStorageGB },
        schemas: parameterSchemas,
      })),
    })),
  };
}

/** The engine and plan of a service id and plan id; undefined when the catalog has no such pair. */
export function findPlan(
  engines: readonly EngineInfo[],
  serviceId: string,
  planId: string,
): CatalogPlan | undefined {
  const engine = engines.find((e) => serviceIdOf(e.engine) === serviceId);
  const plan = engine?.plans.find((p) => planIdOf(engine.engine, p.name) === planId);
  return engine && plan ? { engine, plan } : undefined;
}
