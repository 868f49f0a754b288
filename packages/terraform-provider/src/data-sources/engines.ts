import type { KumoApi } from '../kumo-api.js';
import type { Attribute, Block } from '../schema.js';
import type { TfObject } from '../values.js';

/** A Terraform data source. */
export interface DataSource {
  typeName: string;
  block: Block;
  read(api: KumoApi, config: TfObject): Promise<TfObject>;
}

const engineAttributes: Attribute[] = [
  {
    name: 'engine',
    type: 'string',
    computed: true,
    description: 'The engine name, as kumo_database takes it.',
  },
  { name: 'title', type: 'string', computed: true },
  { name: 'versions', type: ['list', 'string'], computed: true, description: 'Newest first.' },
  { name: 'plans', type: ['list', 'string'], computed: true },
  { name: 'parameters', type: ['list', 'string'], computed: true, description: 'Parameter names.' },
];

/** The engines, versions, plans and parameters the platform offers (GET /v1/engines). */
export const enginesDataSource: DataSource = {
  typeName: 'kumo_engines',
  block: {
    description: 'The engines Kumo offers, with their versions, plans and parameters.',
    attributes: [
      { name: 'engines', nested: { nesting: 'LIST', attributes: engineAttributes }, computed: true },
    ],
  },
  async read(api) {
    const engines = await api.engineList();
    return {
      engines: engines.map((e) => ({
        engine: e.engine,
        title: e.title,
        versions: [...e.versions],
        plans: e.plans.map((p) => p.name),
        parameters: e.parameters.map((p) => p.name),
      })),
    };
  },
};
