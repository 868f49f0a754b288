import { useCallback, useEffect, useState } from 'react';
import { ApiError, type Resource, type WhoAmI, api, problemText, session } from './api.js';
import { TextField } from './fields.js';
import { LOG_LINES, Phase, go, useLiveCollection } from './live.js';

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}
interface AclEntry {
  cidr: string;
  description?: string;
  expiresAt?: string | null;
}

export function DatabaseDetail({
  project,
  name,
  me,
  org,
}: {
  project: string;
  name: string;
  me: WhoAmI | undefined;
  org: string | undefined;
}) {
  const base = `/v1/projects/${project}/databases/${name}`;
  const { items } = useLiveCollection(`/v1/projects/${project}/databases`);
  const db = items?.find((d) => d.metadata.name === name);
  const [events, setEvents] = useState<
    Array<{ type: string; reason: string; message: string; count: number; lastTimestamp: string }>
  >([]);
  const [logs, setLogs] = useState('');
  const [error, setError] = useState('');
  const rv = db?.metadata.resourceVersion;
  useEffect(() => {
    if (rv)
      void api.get<{ items: typeof events }>(`${base}/events`).then(
        (l) => setEvents(l.items),
        () => undefined,
      );
  }, [base, rv]);
  useEffect(() => {
    // Follows the log stream; when it ends (the server stopped, Kumo restarted), follows it again.
    // Not when asking again cannot help: the role may not read logs, or the database is gone.
    const abort = new AbortController();
    const follow = async () => {
      while (!abort.signal.aborted) {
        try {
          const res = await fetch(`${base}/logs?tail=40&follow=true`, {
            headers: { authorization: `Bearer ${session.token}` },
            signal: abort.signal,
          });
          if (res.status === 403) {
            setLogs('Your role may not read the server log.');
            return;
          }
          if (res.status === 401 || res.status === 404) return;
          if (res.ok && res.body) {
            const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
            let lines: string[] = [];
            let partial = '';
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              const parts = (partial + value).split('\n');
              partial = parts.pop()!;
              lines = [...lines, ...parts].slice(-LOG_LINES);
              setLogs(lines.join('\n'));
            }
          }
        } catch {
          // aborted, or the connection dropped: the loop decides
        }
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
    };
    void follow();
    return () => abort.abort();
  }, [base]);
  if (!items) return <p className="muted">Loading…</p>;
  if (!db)
    return (
      <p className="empty">
        No database {name} in {project}. <a href={`#/p/${project}/databases`}>Back to the list</a>
      </p>
    );
  const conditions = (db.status.conditions ?? []) as Condition[];
  const endpoint = db.status.endpoint as { host: string; port: number } | undefined;
  const act = async (fn: () => Promise<unknown>) => {
    setError('');
    try {
      await fn();
    } catch (err) {
      setError(problemText(err));
    }
  };
  const stopped = Boolean(db.spec.stopped);
  return (
    <section className="detail">
      <div className="bar">
        <h1>
          {name} <Phase r={db} />
        </h1>
        <button type="button" onClick={() => act(() => api.patch(base, { spec: { stopped: !stopped } }))}>
          {stopped ? 'Start' : 'Stop'}
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <dl className="facts">
        <dt>Engine</dt>
        <dd>
          {String(db.spec.engine)} {String(db.spec.version)}, plan {String(db.spec.plan)},{' '}
          {String(db.spec.storageGB)} GB
        </dd>
        <dt>Endpoint</dt>
        <dd>{endpoint ? `${endpoint.host}:${endpoint.port}` : '—'}</dd>
        <dt>Generation</dt>
        <dd>
          {db.metadata.generation} (observed {String(db.status.observedGeneration ?? '—')})
        </dd>
      </dl>
      <Credentials base={base} me={me} org={org} project={project} />
      <h2>Conditions</h2>
      <table className="list" aria-label="Conditions">
        <thead>
          <tr>
            <th>Type</th>
            <th>Status</th>
            <th>Reason</th>
            <th className="wide">Message</th>
          </tr>
        </thead>
        <tbody>
          {conditions.map((c) => (
            <tr key={c.type} data-condition={c.type}>
              <td>{c.type}</td>
              <td className={c.status === 'True' ? 'ok' : 'bad'}>{c.status}</td>
              <td>{c.reason}</td>
              <td className="wide muted">{c.message.split('\n')[0]}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <AclEditor db={db} base={base} conditions={conditions} onError={setError} />
      <ParameterEditor db={db} base={base} />
      <h2>Events</h2>
      <ul className="events" aria-label="Events">
        {events.map((e, i) => (
          <li key={i} className={e.type === 'Warning' ? 'bad' : ''}>
            <strong>{e.reason}</strong> {e.message} {e.count > 1 ? `(×${e.count})` : ''}
          </li>
        ))}
      </ul>
      <h2>Log</h2>
      <pre className="log" aria-label="Server log" tabIndex={0}>
        {logs || 'No log lines yet.'}
      </pre>
      <DeleteDatabase name={name} base={base} project={project} />
    </section>
  );
}

function Credentials({
  base,
  me,
  org,
  project,
}: {
  base: string;
  me: WhoAmI | undefined;
  org: string | undefined;
  project: string;
}) {
  const [creds, setCreds] = useState<{ username: string; password: string; uri: string | null }>();
  const [error, setError] = useState('');
  const [copied, setCopied] = useState(false);
  // From the API's own answer: the caller's permissions in this org (and project, if narrowed).
  const grant = me?.grants.find((g) => g.org === org);
  const allowed =
    me?.kind === 'operator' ||
    (grant?.permissions.includes('credentials.read') &&
      (!grant.projects || grant.projects.includes(project)));
  if (!allowed) return <p className="muted">Your role cannot see credentials.</p>;
  return (
    <div className="credentials">
      {!creds ? (
        <button
          type="button"
          onClick={() =>
            api
              .get<typeof creds>(`${base}/credentials`)
              .then(setCreds, (err: unknown) => setError(problemText(err)))
          }
        >
          Show credentials
        </button>
      ) : (
        <>
          <code aria-label="Connection URI">{creds.uri ?? `${creds.username} / ${creds.password}`}</code>
          <button
            type="button"
            onClick={() => {
              void navigator.clipboard?.writeText(creds.uri ?? creds.password).then(() => setCopied(true));
            }}
          >
            {copied ? 'Copied' : 'Copy'}
          </button>
          <button type="button" className="link" onClick={() => setCreds(undefined)}>
            Hide
          </button>
        </>
      )}
      {error && <span className="error">{error}</span>}
    </div>
  );
}

function AclEditor({
  db,
  base,
  conditions,
  onError,
}: {
  db: Resource;
  base: string;
  conditions: Condition[];
  onError: (m: string) => void;
}) {
  const acl = (db.spec.acl ?? []) as AclEntry[];
  const [cidr, setCidr] = useState('');
  const [description, setDescription] = useState('');
  const [hours, setHours] = useState('');
  const [fieldError, setFieldError] = useState('');
  const applied = conditions.find((c) => c.type === 'AclApplied');
  const current = applied?.status === 'True' && applied.observedGeneration === db.metadata.generation;
  const save = async (next: AclEntry[]) => {
    setFieldError('');
    try {
      await api.patch(base, { spec: { acl: next } });
      return true;
    } catch (err) {
      if (err instanceof ApiError) {
        setFieldError(err.fieldError('spec.acl') ?? '');
        if (!err.fieldError('spec.acl')) onError(err.problem.detail);
      }
      return false;
    }
  };
  return (
    <>
      <h2>
        Access list <span className={current ? 'ok' : 'muted'}>{current ? 'applied' : 'applying…'}</span>
      </h2>
      {acl.length === 0 ? (
        <p className="muted">No network may connect.</p>
      ) : (
        <ul className="acl" aria-label="Access list">
          {acl.map((e) => (
            <li key={e.cidr}>
              <code>{e.cidr}</code> {e.description}{' '}
              {e.expiresAt ? (
                <span className="muted">until {new Date(e.expiresAt).toLocaleString()}</span>
              ) : null}
              <button
                type="button"
                className="link"
                aria-label={`Remove ${e.cidr}`}
                onClick={() => void save(acl.filter((x) => x.cidr !== e.cidr))}
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <form
        className="inline"
        aria-label="Add access"
        onSubmit={async (e) => {
          e.preventDefault();
          const entry: AclEntry = {
            cidr,
            ...(description ? { description } : {}),
            ...(hours ? { expiresAt: new Date(Date.now() + Number(hours) * 3600_000).toISOString() } : {}),
          };
          if (await save([...acl, entry])) {
            setCidr('');
            setDescription('');
            setHours('');
          }
        }}
      >
        <TextField
          label="CIDR"
          id="acl-cidr"
          error={fieldError}
          value={cidr}
          onChange={setCidr}
          placeholder="198.51.100.7/32"
          required
        />
        <TextField label="Description" id="acl-description" value={description} onChange={setDescription} />
        <TextField
          label="Temporary: hours (optional)"
          id="acl-hours"
          type="number"
          min={1}
          value={hours}
          onChange={setHours}
        />
        <button type="submit">Add</button>
      </form>
    </>
  );
}

function ParameterEditor({ db, base }: { db: Resource; base: string }) {
  const [param, setParam] = useState('');
  const [value, setValue] = useState('');
  const [preview, setPreview] = useState('');
  const [error, setError] = useState('');
  const body = useCallback(() => {
    const n = Number(value);
    const typed =
      value === 'true' ? true : value === 'false' ? false : value !== '' && !Number.isNaN(n) ? n : value;
    return { spec: { parameters: { [param]: value === '' ? null : typed } } };
  }, [param, value]);
  const check = async () => {
    setError('');
    try {
      const dry = await api.patch<{ effect: string }>(`${base}?dryRun=true`, body());
      setPreview(
        dry.effect === 'restart'
          ? 'Saving will restart the server.'
          : dry.effect === 'reload'
            ? 'Saving reloads the configuration; no restart.'
            : 'Nothing would change.',
      );
    } catch (err) {
      setPreview('');
      setError(
        err instanceof ApiError ? (err.problem.errors?.[0]?.message ?? err.problem.detail) : String(err),
      );
    }
  };
  return (
    <>
      <h2>Parameters</h2>
      <p className="muted">
        {Object.entries((db.spec.parameters ?? {}) as Record<string, unknown>)
          .map(([k, v]) => `${k} = ${String(v)}`)
          .join(', ') || 'All defaults.'}
      </p>
      <form
        className="inline"
        aria-label="Change a parameter"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await api.patch(base, body());
            setPreview('Saved.');
          } catch (err) {
            setError(
              err instanceof ApiError
                ? (err.problem.errors?.[0]?.message ?? err.problem.detail)
                : String(err),
            );
          }
        }}
      >
        <TextField
          label="Parameter"
          id="param-name"
          value={param}
          onChange={(v) => {
            setParam(v);
            setPreview('');
          }}
          required
        />
        <TextField
          label="Value (empty: default)"
          id="param-value"
          error={error}
          value={value}
          onChange={(v) => {
            setValue(v);
            setPreview('');
          }}
        />
        <button type="button" onClick={() => void check()}>
          Check
        </button>
        <button type="submit" disabled={!preview || preview === 'Saved.'}>
          Save
        </button>
      </form>
      {preview && <p role="status">{preview}</p>}
    </>
  );
}

function DeleteDatabase({ name, base, project }: { name: string; base: string; project: string }) {
  const [typed, setTyped] = useState('');
  const [error, setError] = useState('');
  return (
    <form
      className="danger"
      aria-label="Delete database"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          await api.delete(base);
          go(`#/p/${project}/databases`);
        } catch (err) {
          setError(problemText(err));
        }
      }}
    >
      <h2>Delete</h2>
      <TextField
        label={`Type "${name}" to delete it and all its data`}
        id="confirm-delete"
        error={error}
        value={typed}
        onChange={setTyped}
        autoComplete="off"
      />
      <button type="submit" className="destructive" disabled={typed !== name}>
        Delete {name}
      </button>
    </form>
  );
}
