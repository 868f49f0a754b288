import type * as grpc from '@grpc/grpc-js';
import { databaseConnectionDataSource } from './data-sources/database-connection.js';
import { type DataSource, enginesDataSource } from './data-sources/engines.js';
import { type Diagnostic, error } from './diagnostics.js';
import { parseDuration } from './durations.js';
import type { ManagedResource } from './kind-resource.js';
import { ApiError, KumoApi } from './kumo-api.js';
import { loadProto } from './plugin-server.js';
import { TFPLUGIN6_PROTO } from './protocol/tfplugin6.js';
import { databaseResource } from './resources/database.js';
import { memberResource } from './resources/member.js';
import { orgResource } from './resources/org.js';
import { projectResource } from './resources/project.js';
import { serviceTokenResource } from './resources/service-token.js';
import { type Block, blockType, schemaMessage } from './schema.js';
import { type TfObject, type TfType, fromJson, fromMsgpack, toMsgpack } from './values.js';

export const RESOURCES: readonly ManagedResource[] = [
  orgResource,
  projectResource,
  databaseResource,
  memberResource,
  serviceTokenResource,
];
export const DATA_SOURCES: readonly DataSource[] = [enginesDataSource, databaseConnectionDataSource];

const providerBlock: Block = {
  description: 'Kumo: managed databases on your own platform.',
  attributes: [
    {
      name: 'url',
      type: 'string',
      optional: true,
      description: 'The Kumo API, e.g. "https://kumo.example.com". Default: $KUMO_URL.',
    },
    {
      name: 'token',
      type: 'string',
      optional: true,
      sensitive: true,
      description: 'An API token. Default: $KUMO_TOKEN.',
    },
  ],
};

interface DynamicValue {
  msgpack?: Buffer;
  json?: Buffer;
}

/** The fields of Terraform's requests this provider reads (each RPC sends some of them). */
interface ProviderRequest {
  type_name: string;
  id: string;
  config?: DynamicValue;
  current_state?: DynamicValue;
  prior_state?: DynamicValue;
  proposed_new_state?: DynamicValue;
  planned_state?: DynamicValue;
  raw_state?: { json?: Buffer };
  private?: Buffer;
}

const read = (v: DynamicValue | null | undefined, type: TfType) =>
  v?.msgpack?.length ? fromMsgpack(v.msgpack, type) : fromJson(v?.json, type);
const write = (value: TfObject | null, type: TfType): DynamicValue => ({
  msgpack: Buffer.from(toMsgpack(value, type)),
});

/** What went wrong, as Terraform shows it: the API's problem, or the error's message. */
function diagnosticOf(err: unknown): Diagnostic {
  if (err instanceof ApiError) return error(err.title, err.detail);
  return error('terraform-provider-kumo failed', (err as Error).stack ?? String(err));
}

/** The Provider service: Terraform's calls mapped onto the resource types and Kumo's API. */
export function registerProvider(server: grpc.Server): void {
  const tfplugin6 = loadProto(TFPLUGIN6_PROTO).tfplugin6 as grpc.GrpcObject;
  const service = (tfplugin6.Provider as grpc.ServiceClientConstructor).service;
  let api: KumoApi | undefined;

  const resource = (name: string) => {
    const r = RESOURCES.find((x) => x.typeName === name);
    if (!r) throw new Error(`unknown resource type ${name}`);
    return r;
  };
  const dataSource = (name: string) => {
    const d = DATA_SOURCES.find((x) => x.typeName === name);
    if (!d) throw new Error(`unknown data source ${name}`);
    return d;
  };
  const configured = () => {
    if (!api)
      throw new ApiError(
        0,
        'The kumo provider is not configured',
        'Set url and token in its provider block, or KUMO_URL and KUMO_TOKEN.',
      );
    return api;
  };

  /** A unary handler whose failures become diagnostics in its response, never a failed call. */
  const unary =
    (handle: (request: ProviderRequest) => Promise<Record<string, unknown>>) =>
    (call: grpc.ServerUnaryCall<ProviderRequest, unknown>, done: grpc.sendUnaryData<unknown>) => {
      handle(call.request).then(
        (response) => done(null, response),
        (err: unknown) => done(null, { diagnostics: [diagnosticOf(err)] }),
      );
    };

  server.addService(service, {
    GetMetadata: unary(async () => ({
      server_capabilities: { plan_destroy: false, get_provider_schema_optional: false },
      resources: RESOURCES.map((r) => ({ type_name: r.typeName })),
      data_sources: DATA_SOURCES.map((d) => ({ type_name: d.typeName })),
    })),
    GetProviderSchema: unary(async () => ({
      provider: schemaMessage(providerBlock),
      resource_schemas: Object.fromEntries(RESOURCES.map((r) => [r.typeName, schemaMessage(r.block)])),
      data_source_schemas: Object.fromEntries(DATA_SOURCES.map((d) => [d.typeName, schemaMessage(d.block)])),
      server_capabilities: { plan_destroy: false, get_provider_schema_optional: false },
      diagnostics: [],
    })),
    ValidateProviderConfig: unary(async () => ({ diagnostics: [] })),
    ValidateResourceConfig: unary(async (req) => {
      const config = read(req.config, blockType(resource(req.type_name).block)) as TfObject | null;
      const timeouts = (config?.timeouts ?? null) as TfObject | null;
      const diagnostics: Diagnostic[] = [];
      for (const [which, value] of Object.entries(timeouts ?? {}))
        if (typeof value === 'string')
          try {
            parseDuration(value);
          } catch (err) {
            diagnostics.push(
              error(`timeouts.${which} is not a duration`, (err as Error).message, 'timeouts'),
            );
          }
      return { diagnostics };
    }),
    ValidateDataResourceConfig: unary(async () => ({ diagnostics: [] })),
    UpgradeResourceState: unary(async (req) => {
      const type = blockType(resource(req.type_name).block);
      const state = fromJson(req.raw_state?.json, type) as TfObject | null;
      return { upgraded_state: write(state, type), diagnostics: [] };
    }),
    ConfigureProvider: unary(async (req) => {
      const config = (read(req.config, blockType(providerBlock)) ?? {}) as TfObject;
      const url = (config.url as string | null) ?? process.env.KUMO_URL;
      const token = (config.token as string | null) ?? process.env.KUMO_TOKEN;
      if (!url || !token)
        return {
          diagnostics: [
            error(
              'The kumo provider needs a URL and a token',
              'Set url and token in its provider block, or KUMO_URL and KUMO_TOKEN in the environment (`kumo token create` makes one).',
              url ? 'token' : 'url',
            ),
          ],
        };
      api = new KumoApi(url, token);
      return { diagnostics: [] };
    }),
    ReadResource: unary(async (req) => {
      const r = resource(req.type_name);
      const type = blockType(r.block);
      const state = read(req.current_state, type) as TfObject | null;
      const now = state ? await r.read(configured(), state) : null;
      return { new_state: write(now, type), diagnostics: [], private: req.private };
    }),
    PlanResourceChange: unary(async (req) => {
      const r = resource(req.type_name);
      const type = blockType(r.block);
      const prior = read(req.prior_state, type) as TfObject | null;
      const proposed = read(req.proposed_new_state, type) as TfObject | null;
      if (!proposed) return { planned_state: write(null, type), diagnostics: [] };
      const { planned, requiresReplace, diagnostics } = await r.plan(api, prior, proposed);
      return {
        planned_state: write(planned, type),
        requires_replace: requiresReplace.map((name) => ({ steps: [{ attribute_name: name }] })),
        diagnostics,
      };
    }),
    ApplyResourceChange: unary(async (req) => {
      const r = resource(req.type_name);
      const type = blockType(r.block);
      const prior = read(req.prior_state, type) as TfObject | null;
      const planned = read(req.planned_state, type) as TfObject | null;
      try {
        if (!planned) {
          await r.delete(configured(), prior!);
          return { new_state: write(null, type), diagnostics: [] };
        }
        const applied = prior
          ? await r.update(configured(), prior, planned)
          : await r.create(configured(), planned);
        return { new_state: write(applied.state, type), diagnostics: applied.diagnostics };
      } catch (err) {
        // Nothing changed that Terraform does not know of: it keeps what it had.
        return { new_state: write(prior, type), diagnostics: [diagnosticOf(err)] };
      }
    }),
    ImportResourceState: unary(async (req) => {
      const r = resource(req.type_name);
      const type = blockType(r.block);
      const state = await r.read(configured(), r.importState(req.id));
      if (!state)
        return {
          diagnostics: [
            error(
              `Cannot import ${req.type_name} "${req.id}": it does not exist`,
              'Check the id: "<project>/<name>" for project resources, the name for orgs and projects.',
            ),
          ],
        };
      return {
        imported_resources: [{ type_name: req.type_name, state: write(state, type) }],
        diagnostics: [],
      };
    }),
    ReadDataSource: unary(async (req) => {
      const d = dataSource(req.type_name);
      const type = blockType(d.block);
      const config = (read(req.config, type) ?? {}) as TfObject;
      return { state: write(await d.read(configured(), config), type), diagnostics: [] };
    }),
    StopProvider: unary(async () => ({ Error: '' })),
  });
}
