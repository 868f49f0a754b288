import { type FormEvent, useEffect, useState } from 'react';
import { type Resource, type WhoAmI, api, problemText, session } from './api.js';
import { MyInvitations } from './Invitations.js';
import { OrgPage } from './OrgPage.js';
import { BillingPage } from './BillingPage.js';
import { Backups } from './Backups.js';
import { CreateDatabase } from './CreateDatabase.js';
import { DatabaseDetail } from './DatabaseDetail.js';
import { DatabaseList } from './DatabaseList.js';
import { go } from './live.js';

type Route =
  | { page: 'databases'; project: string }
  | { page: 'new'; project: string }
  | { page: 'database'; project: string; name: string }
  | { page: 'backups'; project: string }
  | { page: 'org'; org: string }
  | { page: 'billing'; org: string; ofProject: string | undefined }
  | { page: 'home' };

function parseHash(hash: string): Route {
  const [, p, project, page, name] = hash.replace(/^#/, '').split('/');
  if (p === 'o' && project)
    return page === 'billing'
      ? { page: 'billing', org: project, ofProject: name || undefined }
      : { page: 'org', org: project };
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
    ('org' in route ? route.org : org) ?? (current?.spec.org as string | undefined) ?? orgs[0]?.metadata.name;
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
          <a href={`#/o/${selectedOrg}`} aria-current={'org' in route ? 'page' : undefined}>
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
        ) : route.page === 'billing' ? (
          <BillingPage org={route.org} project={route.ofProject} me={me} />
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
