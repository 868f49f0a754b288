import { notReady } from './api.js';
import { Phase, useLiveCollection } from './live.js';

export function DatabaseList({ project }: { project: string }) {
  const { items, error } = useLiveCollection(`/v1/projects/${project}/databases`);
  return (
    <section>
      <div className="bar">
        <h1>Databases</h1>
        <a className="button" href={`#/p/${project}/new`}>
          Create database
        </a>
      </div>
      {error && <p className="error">{error}</p>}
      {!items ? (
        <p className="muted">Loading…</p>
      ) : items.length === 0 ? (
        <p className="empty">No databases in {project} yet.</p>
      ) : (
        <table className="list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Engine</th>
              <th>Status</th>
              <th className="wide">Details</th>
            </tr>
          </thead>
          <tbody>
            {items.map((db) => (
              <tr key={db.metadata.name} data-name={db.metadata.name}>
                <td>
                  <a href={`#/p/${project}/databases/${db.metadata.name}`}>{db.metadata.name}</a>
                </td>
                <td>
                  {String(db.spec.engine)} {String(db.spec.version)} · {String(db.spec.plan)}
                </td>
                <td>
                  <Phase r={db} />
                </td>
                <td className="wide muted">{notReady(db)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
