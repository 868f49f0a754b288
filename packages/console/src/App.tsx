import { hex } from '@kumo/api/digest';
import { type FormEvent, useCallback, useEffect, useMemo, useState } from 'react';
import {
  ApiError,
  type EngineInfo,
  type Resource,
  type WhoAmI,
  api,
  notReady,
  problemText,
  session,
  watchCollection,
} from './api.js';
import { Field, FormProblem, TextField } from './fields.js';
import { MyInvitations } from './Invitations.js';
import { OrgPage } from './OrgPage.js';

type Route =
  | { page: 'databases'; project: string }
  | { page: 'new'; project: string }
  | { page: 'database'; project: string; name: string }
  | { page: 'backups'; project: string }
  | { page: 'org'; org: string }
  | { page: 'home' };

function parseHash(hash: string): Route {
  const [, p, project, page, name] = hash.replace(/^#/, '').split('/');
  if (p === 'o' && project) return { page: 'org', org: project };
  if (p !== 'p' || !project) return { page: 'home' };
  if (page === 'new') return { page: 'new', project };
  if (page === 'backups') return { page: 'backups', project };
  if (page === 'databases' && name) return { page: 'database', project, name };
  return { page: 'databases', project };
}

function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return parseHash(hash);
}

const go = (hash: string) => {
  location.hash = hash;
};

export function App() {
  const [token, setToken] = useState(session.token);
  useEffect(() => {
    const out = () => {
      session.clear();
      setToken(null);
    };
    window.addEventListener('kumo:unauthenticated', out);
    return () => window.removeEventListener('kumo:unauthenticated', out);
  }, []);
  if (!token) return <SignIn onSignIn={setToken} />;
  return (
    <Shell
      onSignOut={() => {
        session.clear();
        setToken(null);
      }}
    />
  );
}

function SignIn({ onSignIn }: { onSignIn: (token: string) => void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    session.set(value.trim());
    try {
      await api.get<WhoAmI>('/v1/whoami');
      onSignIn(value.trim());
    } catch (err) {
      session.clear();
      setError(problemText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="signin">
      <h1>Kumo</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <label htmlFor="token">API token</label>
        <input
          id="token"
          type="password"
          autoComplete="off"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          placeholder="kumo_…"
          required
        />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="hint">The token is kept for this browser tab only (sessionStorage).</p>
      </form>
    </main>
  );
}

function Shell({ onSignOut }: { onSignOut: () => void }) {
  const route = useRoute();
  const [me, setMe] = useState<WhoAmI>();
  const [orgs, setOrgs] = useState<Resource[]>([]);
  const [projects, setProjects] = useState<Resource[]>();
  const [org, setOrg] = useState<string>();
  useEffect(() => {
    void api.get<WhoAmI>('/v1/whoami').then(setMe);
    void api.get<{ items: Resource[] }>('/v1/orgs').then((l) => setOrgs(l.items));
    void api.get<{ items: Resource[] }>('/v1/projects').then((l) => setProjects(l.items));
  }, []);
  const project = 'project' in route ? route.project : undefined;
  const current = projects?.find((p) => p.metadata.name === project);
  const selectedOrg =
    (route.page === 'org' ? route.org : org) ??
    (current?.spec.org as string | undefined) ??
    orgs[0]?.metadata.name;
  const inOrg = (projects ?? []).filter((p) => p.spec.org === selectedOrg);
  useEffect(() => {
    if (route.page === 'home' && inOrg[0]) go(`#/p/${inOrg[0].metadata.name}/databases`);
  }, [route.page, inOrg]);

  return (
    <div className="shell">
      <header>
        <a className="brand" href="#/">
          Kumo
        </a>
        <label>
          <span className="sr">Organisation</span>
          <select
            aria-label="Organisation"
            value={selectedOrg ?? ''}
            onChange={(e) => {
              setOrg(e.target.value);
              const first = (projects ?? []).find((p) => p.spec.org === e.target.value);
              go(first ? `#/p/${first.metadata.name}/databases` : '#/');
            }}
          >
            {orgs.map((o) => (
              <option key={o.metadata.name}>{o.metadata.name}</option>
            ))}
          </select>
        </label>
        <label>
          <span className="sr">Project</span>
          <select
            aria-label="Project"
            value={project ?? ''}
            onChange={(e) => go(`#/p/${e.target.value}/databases`)}
          >
            {!project && <option value="">—</option>}
            {inOrg.map((p) => (
              <option key={p.metadata.name}>{p.metadata.name}</option>
            ))}
          </select>
        </label>
        {selectedOrg && (
          <a href={`#/o/${selectedOrg}`} aria-current={route.page === 'org' ? 'page' : undefined}>
            Organisation
          </a>
        )}
        <span className="who" title={me?.grants.map((g) => `${g.org}: ${g.role}`).join(', ')}>
          {me?.principal}
        </span>
        <button type="button" className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      {project && (
        <nav aria-label="Sections">
          <a href={`#/p/${project}/databases`} aria-current={route.page !== 'backups' ? 'page' : undefined}>
            Databases
          </a>
          <a href={`#/p/${project}/backups`} aria-current={route.page === 'backups' ? 'page' : undefined}>
            Backups
          </a>
        </nav>
      )}
      <main>
        {projects === undefined ? (
          <p className="muted">Loading…</p>
        ) : route.page === 'home' ? (
          <>
            <MyInvitations />
            <p className="empty">
              {projects.length === 0
                ? 'You have no projects yet. An owner or admin of your organisation creates them.'
                : 'Choose a project.'}
            </p>
          </>
        ) : route.page === 'databases' ? (
          <DatabaseList project={route.project} />
        ) : route.page === 'new' ? (
          <CreateDatabase project={route.project} />
        ) : route.page === 'org' ? (
          <OrgPage org={route.org} me={me} projects={inOrg.map((p) => p.metadata.name)} />
        ) : route.page === 'database' ? (
          <DatabaseDetail project={route.project} name={route.name} me={me} org={selectedOrg} />
        ) : (
          <Backups project={route.project} />
        )}
      </main>
    </div>
  );
}

/** Log lines the detail page keeps while following. */
const LOG_LINES = 200;

/** A collection kept up to date by the watch stream. */
function useLiveCollection(path: string): { items: Resource[] | undefined; error: string } {
  const [items, setItems] = useState<Map<string, Resource>>();
  const [error, setError] = useState('');
  useEffect(() => {
    setItems(undefined);
    let seen = new Map<string, Resource>();
    let flush: number | undefined;
    const stop = watchCollection(
      path,
      (type, object) => {
        seen = new Map(seen);
        if (type === 'DELETED') seen.delete(object.metadata.name);
        else seen.set(object.metadata.name, object);
        clearTimeout(flush);
        flush = window.setTimeout(() => setItems(seen), 30);
      },
      setError,
    );
    // An empty collection sends no events: show it as empty once the stream is up.
    const empty = window.setTimeout(() => setItems((current) => current ?? seen), 800);
    return () => {
      stop();
      clearTimeout(flush);
      clearTimeout(empty);
    };
  }, [path]);
  const list = useMemo(
    () =>
      items ? [...items.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)) : undefined,
    [items],
  );
  return { items: list, error };
}

function Phase({ r }: { r: Resource }) {
  const phase = String(r.status.phase ?? 'Pending');
  return <span className={`phase phase-${phase.toLowerCase()}`}>{phase}</span>;
}

function DatabaseList({ project }: { project: string }) {
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

function CreateDatabase({ project }: { project: string }) {
  const [engines, setEngines] = useState<EngineInfo[]>();
  const [name, setName] = useState('');
  const [engine, setEngine] = useState<'postgres' | 'redis'>('postgres');
  const [version, setVersion] = useState('');
  const [plan, setPlan] = useState('small');
  const [storage, setStorage] = useState('10');
  const [cidr, setCidr] = useState('');
  const [params, setParams] = useState<Record<string, string>>({});
  const [schedule, setSchedule] = useState('');
  const [timezone, setTimezone] = useState(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
  const [keepLast, setKeepLast] = useState('7');
  const [verify, setVerify] = useState(false);
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    void api.get<{ items: EngineInfo[] }>('/v1/engines').then((l) => setEngines(l.items));
  }, []);
  const info = engines?.find((e) => e.engine === engine);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    const parameters = Object.fromEntries(
      Object.entries(params)
        .filter(([, v]) => v !== '')
        .map(([k, v]) => {
          const p = info?.parameters.find((x) => x.name === k);
          return [
            k,
            p?.type === 'integer' || p?.type === 'number'
              ? Number(v)
              : p?.type === 'boolean'
                ? v === 'true'
                : v,
          ];
        }),
    );
    try {
      await api.post(`/v1/projects/${project}/databases`, {
        metadata: { name },
        spec: {
          engine,
          version: version || info?.versions[0],
          plan,
          storageGB: Number(storage),
          parameters,
          acl: cidr ? [{ cidr, description: 'added in the console' }] : [],
          ...(schedule ? { backupPolicy: { schedule, timezone, keepLast: Number(keepLast), verify } } : {}),
        },
      });
      go(`#/p/${project}/databases/${name}`);
    } catch (err) {
      if (err instanceof ApiError) setError(err);
    } finally {
      setBusy(false);
    }
  };
  if (!engines) return <p className="muted">Loading engines…</p>;
  const fieldError = (f: string) => error?.fieldError(f);
  return (
    <section>
      <h1>Create a database in {project}</h1>
      <form className="form" onSubmit={submit} aria-label="Create database">
        <TextField
          label="Name"
          id="db-name"
          error={fieldError('metadata.name')}
          value={name}
          onChange={setName}
          required
          pattern="[a-z0-9]([a-z0-9\-]*[a-z0-9])?"
        />
        <Field label="Engine" id="db-engine" error={fieldError('spec.engine')}>
          <select
            id="db-engine"
            value={engine}
            onChange={(e) => {
              setEngine(e.target.value as 'postgres' | 'redis');
              setVersion('');
              setParams({});
            }}
          >
            {engines.map((e) => (
              <option key={e.engine} value={e.engine}>
                {e.engine}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Version" id="db-version" error={fieldError('spec.version')}>
          <select
            id="db-version"
            value={version || info?.versions[0]}
            onChange={(e) => setVersion(e.target.value)}
          >
            {info?.versions.map((v) => (
              <option key={v}>{v}</option>
            ))}
          </select>
        </Field>
        <Field label="Plan" id="db-plan" error={fieldError('spec.plan')}>
          <select id="db-plan" value={plan} onChange={(e) => setPlan(e.target.value)}>
            {info?.plans.map((p) => (
              <option key={p.name} value={p.name}>
                {p.name} — {p.memoryMB} MB, {p.maxConnections} connections, up to {p.maxStorageGB} GB
              </option>
            ))}
          </select>
        </Field>
        <TextField
          label="Storage (GB)"
          id="db-storage"
          error={fieldError('spec.storageGB')}
          type="number"
          min={1}
          value={storage}
          onChange={setStorage}
        />
        <TextField
          label="Allow network (CIDR, optional)"
          id="db-acl"
          error={fieldError('spec.acl')}
          value={cidr}
          onChange={setCidr}
          placeholder="203.0.113.0/24"
        />
        <fieldset>
          <legend>Parameters (optional)</legend>
          {info?.parameters.map((p) => (
            <Field
              key={p.name}
              id={`param-${p.name}`}
              label={`${p.name}${p.unit ? ` (${p.unit})` : ''}${p.min !== undefined ? ` ${p.min}–${p.max ?? '∞'}` : ''} · ${p.apply}`}
              error={fieldError(`spec.parameters.${p.name}`)}
            >
              {p.type === 'enum' || p.type === 'boolean' ? (
                <select
                  id={`param-${p.name}`}
                  value={params[p.name] ?? ''}
                  onChange={(e) => setParams({ ...params, [p.name]: e.target.value })}
                >
                  <option value="">default</option>
                  {(p.type === 'boolean' ? ['true', 'false'] : (p.values ?? [])).map((v) => (
                    <option key={v}>{v}</option>
                  ))}
                </select>
              ) : (
                <input
                  id={`param-${p.name}`}
                  type={p.type === 'string' ? 'text' : 'number'}
                  title={p.description}
                  placeholder="default"
                  value={params[p.name] ?? ''}
                  onChange={(e) => setParams({ ...params, [p.name]: e.target.value })}
                />
              )}
            </Field>
          ))}
        </fieldset>
        <fieldset>
          <legend>Scheduled backups (optional)</legend>
          <TextField
            label="Schedule (cron: minute hour day month weekday)"
            id="db-backup-schedule"
            error={fieldError('spec.backupPolicy.schedule')}
            value={schedule}
            onChange={setSchedule}
            placeholder="0 3 * * *"
          />
          <TextField
            label="Time zone"
            id="db-backup-timezone"
            error={fieldError('spec.backupPolicy.timezone')}
            value={timezone}
            onChange={setTimezone}
          />
          <TextField
            label="Keep this many"
            id="db-backup-keep"
            error={fieldError('spec.backupPolicy.keepLast')}
            type="number"
            min={1}
            value={keepLast}
            onChange={setKeepLast}
          />
          <label className="check">
            <input type="checkbox" checked={verify} onChange={(e) => setVerify(e.target.checked)} /> Verify
            each backup (restore it into a scratch instance and compare)
          </label>
        </fieldset>
        <FormProblem error={error} />
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create'}
        </button>
      </form>
    </section>
  );
}

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

function DatabaseDetail({
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

function Backups({ project }: { project: string }) {
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
      const link = document.createElement('a');
      link.href = URL.createObjectURL(file.blob);
      link.download = file.filename;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
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
