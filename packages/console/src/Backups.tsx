import { hex } from '@kumo/api/digest';
import { useState } from 'react';
import { type Resource, api, notReady, problemText, saveFile } from './api.js';
import { Field } from './fields.js';
import { Phase, useLiveCollection } from './live.js';

export function Backups({ project }: { project: string }) {
  const { items } = useLiveCollection(`/v1/projects/${project}/backups`);
  const { items: databases } = useLiveCollection(`/v1/projects/${project}/databases`);
  const [database, setDatabase] = useState('');
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const act = async (fn: () => Promise<unknown>) => {
    setError('');
    try {
      await fn();
    } catch (err) {
      setError(problemText(err));
    }
  };
  const restore = async (b: Resource) => {
    const target = window.prompt(`Name of the new database to restore ${b.metadata.name} into:`);
    if (!target) return;
    const source = databases?.find((d) => d.metadata.name === b.spec.database);
    await act(() =>
      api.post(`/v1/projects/${project}/databases`, {
        metadata: { name: target },
        spec: {
          engine: b.status.engine,
          version: b.status.version,
          plan: source?.spec.plan ?? 'small',
          acl: source?.spec.acl ?? [],
          restoreFrom: { backup: b.metadata.name },
        },
      }),
    );
  };
  const restoreInPlace = async (b: Resource) => {
    const db = String(b.spec.database);
    const typed = window.prompt(
      `Restore ${b.metadata.name} INTO ${db}, replacing its data? Kumo takes a safety backup of ${db} first. Type "${db}" to confirm:`,
    );
    if (typed === null) return;
    if (typed !== db) {
      setError(`Not restored: "${typed}" is not "${db}".`);
      return;
    }
    await act(() => api.post(`/v1/projects/${project}/databases/${db}/restore`, { backup: b.metadata.name }));
  };
  // Saved only when its SHA-256 is the one recorded at backup time (where the browser can hash:
  // crypto.subtle needs https or localhost).
  const download = (b: Resource) =>
    act(async () => {
      setNotice('');
      const name = b.metadata.name;
      const file = await api.download(`/v1/projects/${project}/backups/${name}/download`);
      const checked = Boolean(file.sha256 && globalThis.crypto?.subtle);
      if (checked) {
        const got = hex(await crypto.subtle.digest('SHA-256', await file.blob.arrayBuffer()));
        if (got !== file.sha256) {
          setError(
            `The download of ${name} does not match the SHA-256 recorded when it was taken; it was not saved. Verify the backup.`,
          );
          return;
        }
      }
      saveFile(file);
      setNotice(
        `${file.filename}: ${file.blob.size} bytes${checked ? ', SHA-256 as recorded' : ' (not checked: this browser cannot hash here)'}`,
      );
    });
  return (
    <section>
      <h1>Backups</h1>
      <form
        className="inline"
        aria-label="Create backup"
        onSubmit={(e) => {
          e.preventDefault();
          const stamp = new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '');
          void act(() =>
            api.post(`/v1/projects/${project}/backups`, {
              metadata: { name: `${database.slice(0, 45)}-${stamp}` },
              spec: { database },
            }),
          );
        }}
      >
        <Field label="Database" id="backup-db">
          <select id="backup-db" value={database} onChange={(e) => setDatabase(e.target.value)} required>
            <option value="">choose…</option>
            {databases?.map((d) => (
              <option key={d.metadata.name}>{d.metadata.name}</option>
            ))}
          </select>
        </Field>
        <button type="submit">Back up now</button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {notice && <p role="status">{notice}</p>}
      {!items ? (
        <p className="muted">Loading…</p>
      ) : items.length === 0 ? (
        <p className="empty">No backups yet.</p>
      ) : (
        <table className="list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Database</th>
              <th>Status</th>
              <th className="wide">Details</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {items.map((b) => {
              const object = b.status.object as { size: number } | undefined;
              const v = b.status.verification as { state: string; message: string } | undefined;
              return (
                <tr key={b.metadata.name}>
                  <td>{b.metadata.name}</td>
                  <td>{String(b.spec.database)}</td>
                  <td>
                    <Phase r={b} />
                  </td>
                  <td className="wide muted">
                    {object ? `${(object.size / 1024).toFixed(1)} KiB` : ''}{' '}
                    {v ? `verification ${v.state}` : ''} {notReady(b)}
                  </td>
                  <td>
                    {b.status.phase === 'Succeeded' && (
                      <>
                        <button
                          type="button"
                          onClick={() =>
                            void act(() =>
                              api.post(`/v1/projects/${project}/backups/${b.metadata.name}/verify`),
                            )
                          }
                        >
                          Verify
                        </button>
                        <button type="button" onClick={() => void restore(b)}>
                          Restore into new
                        </button>
                        <button type="button" onClick={() => void download(b)}>
                          Download
                        </button>
                        {databases?.some((d) => d.metadata.name === b.spec.database) && (
                          <button
                            type="button"
                            className="destructive"
                            onClick={() => void restoreInPlace(b)}
                          >
                            Restore in place
                          </button>
                        )}
                      </>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
