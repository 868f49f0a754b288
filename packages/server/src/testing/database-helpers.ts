import type { PostgresConnection } from '../store/embedded-postgres.js';
import { type TestKumo, type TestKumoOptions, startTestKumo } from './test-kumo.js';
import { waitFor } from './wait.js';

export type DatabaseTestKumo = Awaited<ReturnType<typeof startTestKumo>>;

/** A test Kumo with org "acme" and the given project, ready for databases. */
export async function startKumoWithProject(
  server: PostgresConnection,
  project: string,
  options: TestKumoOptions = {},
): Promise<DatabaseTestKumo> {
  const t = await startTestKumo(server, options);
  await t.request('/v1/orgs', { method: 'POST', json: { metadata: { name: 'acme' }, spec: {} } });
  await t.request('/v1/projects', {
    method: 'POST',
    json: { metadata: { name: project }, spec: { org: 'acme' } },
  });
  return t;
}

/**
 * Helpers for the databases of one project. `kumo` is a getter because a test may replace its
 * Kumo (a restart) halfway through.
 */
export function databaseHelpers(kumo: () => TestKumo, project: string) {
  const collection = `/v1/projects/${project}/databases`;
  const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json();
  const get = (name: string) => json(kumo().request(`${collection}/${name}`));
  const patch = (name: string, body: unknown) =>
    json(kumo().request(`${collection}/${name}`, { method: 'PATCH', json: body }));
  /** Waits until the database is Ready (condition True) for its current generation. */
  const ready = (name: string): Promise<any> =>
    waitFor(async () => {
      const db = await get(name);
      const cond = db.status.conditions?.find((c: { type: string }) => c.type === 'Ready');
      return db.status.phase === 'Ready' &&
        cond?.status === 'True' &&
        db.status.observedGeneration === db.metadata.generation
        ? db
        : undefined;
    }, `${name} Ready`);
  return { collection, json, get, patch, ready };
}
