import { type FormEvent, useCallback, useEffect, useState } from 'react';
import type { AuditEntry, InvitationInfo, MemberInfo, QuotaReport, TokenInfo } from '@kumo/api';
import { ApiError, type WhoAmI, api, problemText } from './api.js';
import { Field, FormProblem, TextField } from './fields.js';
import { MyInvitations } from './Invitations.js';

const ROLES = ['owner', 'admin', 'developer', 'viewer', 'billing'];

/**
 * An organisation: your invitation to it (if any), its quotas and usage, its members and pending
 * invitations, your tokens and its activity (the audit log) — each shown to who may see it.
 */
export function OrgPage({ org, me, projects }: { org: string; me: WhoAmI | undefined; projects: string[] }) {
  const grant = me?.grants.find((g) => g.org === org);
  const may = (permission: string) =>
    me?.kind === 'operator' || (grant?.projects === null && grant.permissions.includes(permission));
  if (!me) return <p className="muted">Loading…</p>;
  return (
    <section>
      <h1>Organisation {org}</h1>
      {may('usage.read') && (
        <>
          <h2>Quotas</h2>
          <QuotaTable
            path={`/v1/orgs/${org}/quotas`}
            title={`org ${org}`}
            editable={me.kind === 'operator'}
          />
          {projects.map((p) => (
            <QuotaTable
              key={p}
              path={`/v1/projects/${p}/quotas`}
              title={`project ${p}`}
              editable={may('quotas.manage')}
            />
          ))}
        </>
      )}
      {me.kind === 'user' && <MyInvitations org={org} />}
      {may('members.read') && (
        <Members org={org} manage={may('members.manage')} owner={may('owners.manage')} />
      )}
      <Tokens org={org} me={me} />
      {may('audit.read') && <Activity org={org} />}
    </section>
  );
}

/** A scope's quotas with their usage; with `editable`, a form that changes the limits (empty: no limit). */
function QuotaTable({ path, title, editable }: { path: string; title: string; editable: boolean }) {
  const [report, setReport] = useState<QuotaReport>();
  const [limits, setLimits] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const show = useCallback((r: QuotaReport) => {
    setReport(r);
    setLimits(Object.fromEntries(r.items.map((q) => [q.quota, q.limit === null ? '' : String(q.limit)])));
  }, []);
  useEffect(() => {
    void api.get<QuotaReport>(path).then(show, () => undefined);
  }, [path, show]);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError('');
    try {
      const change = Object.fromEntries(
        Object.entries(limits).map(([quota, v]) => [quota, v === '' ? null : Number(v)]),
      );
      show(await api.patch<QuotaReport>(path, change));
    } catch (err) {
      setError(problemText(err));
    }
  };
  if (!report) return <p className="muted">Loading…</p>;
  const table = (
    <table className="list" aria-label={title}>
      <thead>
        <tr>
          <th>Quota</th>
          <th>Used</th>
          <th>Limit</th>
          <th>Left</th>
        </tr>
      </thead>
      <tbody>
        {report.items.map((q) => (
          <tr key={q.quota} data-quota={q.quota}>
            <td>{q.quota}</td>
            <td>{q.used}</td>
            <td>
              {editable ? (
                <input
                  aria-label={`${title}: ${q.quota} limit`}
                  type="number"
                  min={0}
                  placeholder="none"
                  value={limits[q.quota] ?? ''}
                  onChange={(e) => setLimits({ ...limits, [q.quota]: e.target.value })}
                />
              ) : (
                (q.limit ?? 'none')
              )}
            </td>
            <td>{q.remaining ?? '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
  return (
    <>
      <h3>{title}</h3>
      {editable ? (
        <form aria-label={`Change ${title}`} onSubmit={(e) => void save(e)}>
          {table}
          <button type="submit">Save {title}</button>
        </form>
      ) : (
        table
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </>
  );
}

/**
 * The org's members and, for owners and admins, its pending invitations and one form: a member's
 * name changes their role, any other name is invited (they join when they accept).
 */
function Members({ org, manage, owner }: { org: string; manage: boolean; owner: boolean }) {
  const [members, setMembers] = useState<MemberInfo[]>();
  const [invitations, setInvitations] = useState<InvitationInfo[]>([]);
  const [user, setUser] = useState('');
  const [role, setRole] = useState('developer');
  const [projects, setProjects] = useState('');
  const [error, setError] = useState<ApiError>();
  const [notice, setNotice] = useState('');
  const load = useCallback(async () => {
    const [m, i] = await Promise.all([
      api.get<{ items: MemberInfo[] }>(`/v1/orgs/${org}/members`),
      manage
        ? api.get<{ items: InvitationInfo[] }>(`/v1/orgs/${org}/invitations`)
        : Promise.resolve({ items: [] }),
    ]);
    setMembers(m.items);
    setInvitations(i.items);
  }, [org, manage]);
  useEffect(() => void load().catch(() => undefined), [load]);
  const act = async (fn: () => Promise<unknown>, done: string) => {
    setError(undefined);
    setNotice('');
    try {
      await fn();
      setNotice(done);
      await load();
    } catch (err) {
      if (err instanceof ApiError) setError(err);
      else setNotice(problemText(err));
    }
  };
  const isMember = members?.some((m) => m.user === user.trim()) ?? false;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const name = user.trim();
    const list = projects
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const narrowed = list.length ? ` in ${list.join(', ')}` : '';
    const body = { role, projects: list.length ? list : null };
    if (isMember) {
      void act(() => api.put(`/v1/orgs/${org}/members/${name}`, body), `${name} is ${role}${narrowed}.`);
    } else {
      void act(
        () => api.post(`/v1/orgs/${org}/invitations`, { user: name, ...body }),
        `${name} is invited as ${role}${narrowed}: they join when they accept.`,
      );
    }
  };
  const remove = (m: MemberInfo) => {
    if (!window.confirm(`Remove ${m.user} from ${org}? Their access ends at once.`)) return;
    void act(() => api.delete(`/v1/orgs/${org}/members/${m.user}`), `${m.user} was removed.`);
  };
  const cancel = (i: InvitationInfo) =>
    void act(
      () => api.delete(`/v1/orgs/${org}/invitations/${i.id}`),
      `The invitation of ${i.user} was cancelled.`,
    );
  return (
    <>
      <h2>Members</h2>
      {!members ? (
        <p className="muted">Loading…</p>
      ) : (
        <table className="list" aria-label="Members">
          <thead>
            <tr>
              <th>User</th>
              <th>Role</th>
              <th className="wide">Projects</th>
              {manage && <th>Actions</th>}
            </tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <tr key={m.user} data-member={m.user}>
                <td>{m.user}</td>
                <td>{m.role}</td>
                <td className="wide">{m.projects ? m.projects.join(', ') || 'none' : 'all'}</td>
                {manage && (
                  <td>
                    {(owner || m.role !== 'owner') && (
                      <button type="button" className="destructive" onClick={() => remove(m)}>
                        Remove {m.user}
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {manage && invitations.length > 0 && (
        <table className="list" aria-label="Pending invitations">
          <thead>
            <tr>
              <th>Invited</th>
              <th>Role</th>
              <th className="wide">Projects, by, until</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {invitations.map((i) => (
              <tr key={i.id} data-invitation={i.user}>
                <td>{i.user}</td>
                <td>{i.role}</td>
                <td className="wide muted">
                  {i.projects ? i.projects.join(', ') || 'none' : 'all'}, by {i.invitedBy}, until{' '}
                  {i.expiresAt.slice(0, 10)}
                </td>
                <td>
                  {(owner || i.role !== 'owner') && (
                    <button type="button" className="destructive" onClick={() => cancel(i)}>
                      Cancel invitation of {i.user}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {manage && (
        <form className="inline" aria-label="Invite or change a member" onSubmit={submit}>
          <TextField
            label="User"
            id="member-user"
            value={user}
            onChange={setUser}
            required
            error={error?.fieldError('user')}
          />
          <Field label="Role" id="member-role" error={error?.fieldError('role')}>
            <select id="member-role" value={role} onChange={(e) => setRole(e.target.value)}>
              {ROLES.filter((r) => owner || r !== 'owner').map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </Field>
          <TextField
            label="Only in projects (comma-separated, optional)"
            id="member-projects"
            value={projects}
            onChange={setProjects}
            error={error?.fieldError('projects')}
          />
          <button type="submit">{isMember ? 'Save member' : 'Invite'}</button>
        </form>
      )}
      <FormProblem error={error} />
      {notice && <p role="status">{notice}</p>}
    </>
  );
}

function Tokens({ org, me }: { org: string; me: WhoAmI }) {
  const [tokens, setTokens] = useState<TokenInfo[]>();
  const [name, setName] = useState('');
  const [role, setRole] = useState('');
  const [days, setDays] = useState('90');
  const [made, setMade] = useState<TokenInfo & { token: string }>();
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<ApiError>();
  const load = useCallback(
    () => api.get<{ items: TokenInfo[] }>('/v1/tokens').then((l) => setTokens(l.items)),
    [],
  );
  useEffect(() => void load().catch(() => undefined), [load]);
  const mine = (tokens ?? []).filter((t) => !t.revokedAt && (t.org === null || t.org === org));
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    setCopied(false);
    try {
      setMade(
        await api.post<TokenInfo & { token: string }>('/v1/tokens', {
          name,
          org,
          ...(role ? { role } : {}),
          ...(days ? { expiresInDays: Number(days) } : {}),
        }),
      );
      setName('');
      await load();
    } catch (err) {
      if (err instanceof ApiError) setError(err);
    }
  };
  const revoke = async (t: TokenInfo) => {
    if (!window.confirm(`Revoke token ${t.name}? Whatever uses it stops working at once.`)) return;
    try {
      await api.delete(`/v1/tokens/${t.id}`);
      await load();
    } catch (err) {
      if (err instanceof ApiError) setError(err);
    }
  };
  return (
    <>
      <h2>API tokens</h2>
      {!tokens ? (
        <p className="muted">Loading…</p>
      ) : mine.length === 0 ? (
        <p className="empty">No tokens for {org}.</p>
      ) : (
        <table className="list" aria-label="API tokens">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th className="wide">Owner, last used, expiry</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {mine.map((t) => (
              <tr key={t.id} data-token={t.name}>
                <td>
                  {t.name} <code>kumo_{t.prefix}_…</code>
                </td>
                <td>{t.role}</td>
                <td className="wide muted">
                  {t.principal}, {t.lastUsedAt ? `used ${t.lastUsedAt.slice(0, 16)}` : 'never used'},{' '}
                  {t.expiresAt ? `expires ${t.expiresAt.slice(0, 10)}` : 'no expiry'}
                </td>
                <td>
                  <button type="button" className="destructive" onClick={() => void revoke(t)}>
                    Revoke {t.name}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="inline" aria-label="Create a token" onSubmit={(e) => void submit(e)}>
        <TextField
          label="Token name"
          id="token-name"
          value={name}
          onChange={setName}
          required
          error={error?.fieldError('name')}
        />
        <Field label="Role (at most yours)" id="token-role" error={error?.fieldError('role')}>
          <select id="token-role" value={role} onChange={(e) => setRole(e.target.value)}>
            <option value="">same as mine ({me.grants.find((g) => g.org === org)?.role ?? me.role})</option>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </Field>
        <TextField
          label="Expires after (days, empty: never)"
          id="token-days"
          type="number"
          min={1}
          value={days}
          onChange={setDays}
          error={error?.fieldError('expiresInDays')}
        />
        <button type="submit">Create token</button>
      </form>
      <FormProblem error={error} />
      {made && (
        <div className="credentials" role="status">
          <p>Token {made.name} — shown once, keep it now:</p>
          <code aria-label="New token">{made.token}</code>{' '}
          <button
            type="button"
            onClick={() => void navigator.clipboard?.writeText(made.token).then(() => setCopied(true))}
          >
            {copied ? 'Copied' : 'Copy'}
          </button>
        </div>
      )}
    </>
  );
}

const AUDIT_FILTERS = [
  ['project', 'Project'],
  ['kind', 'Kind'],
  ['name', 'Name'],
  ['actor', 'Actor'],
] as const;

/** The org's audit log, newest first: every change and every credentials read, with who and from where. */
function Activity({ org }: { org: string }) {
  const [entries, setEntries] = useState<AuditEntry[]>();
  const [filters, setFilters] = useState<Record<string, string>>({});
  const [system, setSystem] = useState(false);
  const [error, setError] = useState<ApiError>();
  const load = useCallback(
    async (wanted: Record<string, string>, withSystem: boolean) => {
      setError(undefined);
      const query = new URLSearchParams({ org, limit: '100', system: String(withSystem) });
      for (const [key, value] of Object.entries(wanted)) if (value.trim()) query.set(key, value.trim());
      try {
        setEntries((await api.get<{ items: AuditEntry[] }>(`/v1/audit?${query}`)).items);
      } catch (err) {
        if (err instanceof ApiError) setError(err);
      }
    },
    [org],
  );
  useEffect(() => void load({}, false), [load]);
  return (
    <>
      <h2>Activity</h2>
      <form
        className="inline"
        aria-label="Filter the activity"
        onSubmit={(e) => {
          e.preventDefault();
          void load(filters, system);
        }}
      >
        {AUDIT_FILTERS.map(([key, label]) => (
          <TextField
            key={key}
            label={label}
            id={`audit-${key}`}
            value={filters[key] ?? ''}
            onChange={(v) => setFilters({ ...filters, [key]: v })}
            error={error?.fieldError(key)}
          />
        ))}
        <label className="check">
          <input type="checkbox" checked={system} onChange={(e) => setSystem(e.target.checked)} />
          Kumo&apos;s own status updates too
        </label>
        <button type="submit">Show activity</button>
      </form>
      <FormProblem error={error} />
      {!entries ? (
        !error && <p className="muted">Loading…</p>
      ) : entries.length === 0 ? (
        <p className="empty">No activity matches.</p>
      ) : (
        <table className="list" aria-label="Activity">
          <thead>
            <tr>
              <th>When (UTC)</th>
              <th>Who</th>
              <th>What</th>
              <th className="wide">From</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.id} data-action={e.action} data-kind={e.kind}>
                <td>{e.at.slice(0, 19).replace('T', ' ')}</td>
                <td>{e.actor}</td>
                <td>
                  {e.action} {e.kind} {e.project ? `${e.project}/` : ''}
                  {e.name}
                  {e.outcome !== 'success' && <strong> ({e.outcome})</strong>}
                </td>
                <td className="wide muted">{e.source ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
