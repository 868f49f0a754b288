import { type FormEvent, useCallback, useEffect, useState } from 'react';
import type { AuditEntry, QuotaReport, TokenInfo } from '@kumo/api';
import { ApiError, type WhoAmI, api, problemText } from './api.js';
import { Field, FormProblem, TextField } from './fields.js';
import { MyInvitations } from './Invitations.js';
import { Members } from './OrgMembers.js';
import { ROLES } from './roles.js';

/**
 * An organisation: the way to its billing page, your invitation to it (if any), its quotas and
 * usage, its members and pending invitations, your tokens and its activity (the audit log) — each
 * shown to who may see it.
 */
export function OrgPage({ org, me, projects }: { org: string; me: WhoAmI | undefined; projects: string[] }) {
  const grant = me?.grants.find((g) => g.org === org);
  const may = (permission: string) =>
    me?.kind === 'operator' || (grant?.projects === null && grant.permissions.includes(permission));
  if (!me) return <p className="muted">Loading…</p>;
  return (
    <section>
      <h1>Organisation {org}</h1>
      {may('costs.read') && (
        <p>
          <a href={`#/o/${org}/billing`}>Billing</a>: cost this month, forecast, invoices and budget
        </p>
      )}
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
