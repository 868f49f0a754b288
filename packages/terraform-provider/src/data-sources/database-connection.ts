import type { DataSource } from './engines.js';

interface Credentials {
  username: string;
  password: string;
  database: string;
  host: string | null;
  port: number | null;
  uri: string | null;
}

/** How to connect to a database as its owner (GET …/databases/{name}/credentials); secrets are sensitive. */
export const databaseConnectionDataSource: DataSource = {
  typeName: 'kumo_database_connection',
  block: {
    description: "A database's connection details and owner credentials. The password and URI are sensitive.",
    attributes: [
      { name: 'project', type: 'string', required: true },
      { name: 'name', type: 'string', required: true, description: 'The database.' },
      { name: 'host', type: 'string', computed: true },
      { name: 'port', type: 'number', computed: true },
      {
        name: 'database',
        type: 'string',
        computed: true,
        description: 'The logical database to connect to.',
      },
      { name: 'username', type: 'string', computed: true },
      { name: 'password', type: 'string', computed: true, sensitive: true },
      {
        name: 'uri',
        type: 'string',
        computed: true,
        sensitive: true,
        description: 'A connection URI; null until the database has an endpoint.',
      },
    ],
  },
  async read(api, config) {
    const c = await api.request<Credentials>(
      'GET',
      `/v1/projects/${String(config.project)}/databases/${String(config.name)}/credentials`,
    );
    return {
      ...config,
      host: c.host,
      port: c.port,
      database: c.database,
      username: c.username,
      password: c.password,
      uri: c.uri,
    };
  },
};
