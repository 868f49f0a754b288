import { type FormEvent, useEffect, useState } from 'react';
import { ApiError, type EngineInfo, api } from './api.js';
import { Field, FormProblem, TextField } from './fields.js';
import { go } from './live.js';

export function CreateDatabase({ project }: { project: string }) {
  const [engines, setEngines] = useState<EngineInfo[]>();
  const [name, setName] = useState('');
  const [chosen, setEngine] = useState<string>();
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
  // The first engine the platform lists until one is chosen: the console knows no engine itself.
  const engine = chosen ?? engines?.[0]?.engine ?? '';
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
              setEngine(e.target.value);
              setVersion('');
              setParams({});
            }}
          >
            {engines.map((e) => (
              <option key={e.engine} value={e.engine}>
                {e.title}
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
