import { useEffect, useState } from 'react';
import type { Budget, BudgetStatus } from '@kumo/api';
import { type WhoAmI, api, problemText } from './api.js';
import { DailyChart } from './BillingChart.js';
import { Invoices } from './BillingInvoices.js';
import { BudgetPanel } from './BudgetPanel.js';
import { useLiveCollection } from './live.js';
import { money } from './money.js';
import { may } from './roles.js';

/**
 * The part of the cost report (GET /v1/orgs/{org}/cost or /v1/projects/{project}/cost,
 * docs/billing.md) the billing page shows; amounts are integers in the minor unit. @kumo/api has
 * no type for it (the server's CostReport is in packages/server), hence this one.
 */
export interface CostReport {
  period: { month: string; timeZone: string; to: string };
  asOf: string;
  currency?: string;
  total: number;
  forecast: { total: number; assumption: string };
  projects: Array<{ project: string; total: number }>;
  days: Array<{ date: string; project: string; amount: number }>;
  resources: Array<{
    uid: string;
    project: string;
    name: string;
    deleted: boolean;
    total: number;
    coverage: { expectedSeconds: number; observedSeconds: number; missingSeconds: number };
  }>;
  unpriced: Array<{ meter: string; plan: string }>;
}

/**
 * Missing time shorter than this is the agent's report interval at work, not a gap: the seconds
 * since its last report (every KUMO_USAGE_REPORT_SECONDS, default 60) are not reported yet.
 */
const NOTABLE_MISSING_SECONDS = 120;

/** The twelve months up to and including `month` ("2027-03"), newest first. */
function monthsUpTo(month: string): string[] {
  const [year, m] = month.split('-').map(Number) as [number, number];
  return Array.from({ length: 12 }, (_, i) => {
    const index = year * 12 + (m - 1) - i;
    return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, '0')}`;
  });
}

/** A duration for people: "40 s", "12 min", "3.5 h". */
function duration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 360) / 10} h`;
}

/**
 * Billing of an org, or with `project` of one of its projects (for who has costs.read there): the
 * month's cost to date and forecast, a chart of the daily cost per project, the cost per project
 * and resource, the org's invoices to download, and the budget — editable by roles that may update
 * the org (or project). Previous months through the month picker. A caller who may not see cost
 * gets the API's answer.
 */
export function BillingPage({
  org,
  project,
  me,
}: {
  org: string;
  project: string | undefined;
  me: WhoAmI | undefined;
}) {
  const scope = project ? `/v1/projects/${project}` : `/v1/orgs/${org}`;
  const [month, setMonth] = useState<string>();
  const [current, setCurrent] = useState<string>();
  const [report, setReport] = useState<CostReport>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let live = true;
    setError(undefined);
    api.get<CostReport>(`${scope}/cost${month ? `?month=${month}` : ''}`).then(
      (r) => {
        if (!live) return;
        setReport(r);
        if (!month) setCurrent(r.period.month);
      },
      (err: unknown) => live && setError(problemText(err)),
    );
    return () => {
      live = false;
    };
  }, [scope, month]);

  return (
    <section>
      <div className="bar">
        <h1>{project ? `Billing of project ${project}` : `Billing of ${org}`}</h1>
        {current && (
          <label>
            Month{' '}
            <select value={month ?? current} onChange={(e) => setMonth(e.target.value)}>
              {monthsUpTo(current).map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </label>
        )}
      </div>
      {project && (
        <p>
          <a href={`#/o/${org}/billing`}>Billing of {org}</a>, with its invoices
        </p>
      )}
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : !report ? (
        <p className="muted">Loading…</p>
      ) : (
        <>
          <Cost report={report} />
          {!project && <ProjectCosts org={org} report={report} />}
          <Resources report={report} />
          {!project && <Invoices org={org} />}
          <BudgetPanel
            kind={project ? 'project' : 'org'}
            name={project ?? org}
            currency={report.currency}
            editable={may(me, org, project ? 'projects.update' : 'org.update', project)}
          />
        </>
      )}
    </section>
  );
}

function Cost({ report }: { report: CostReport }) {
  const { currency } = report;
  const missing = report.resources.filter((r) => r.coverage.missingSeconds >= NOTABLE_MISSING_SECONDS);
  const running = Date.parse(report.asOf) < Date.parse(report.period.to);
  return (
    <>
      {!currency && <p className="empty">The price book has no price yet: nothing is billed.</p>}
      <dl className="facts" aria-label="Cost">
        <dt>Month to date</dt>
        <dd data-testid="total">{money(report.total, currency)}</dd>
        <dt>Forecast</dt>
        <dd>
          <span data-testid="forecast">{money(report.forecast.total, currency)}</span>{' '}
          {running && <span className="muted">— {report.forecast.assumption}</span>}
        </dd>
        <dt>As of</dt>
        <dd>
          {report.asOf.slice(0, 16).replace('T', ' ')} UTC (months in {report.period.timeZone})
        </dd>
      </dl>
      {missing.length > 0 && (
        <div className="bad" role="status" aria-label="Missing time">
          <p>
            Missing time, billed as nothing:{' '}
            {missing.map((r) => `${r.project}/${r.name} ${duration(r.coverage.missingSeconds)}`).join(', ')}.
          </p>
          <p className="hint">
            Time no agent reported — an agent down, a target unreachable, the seconds before a crash it had
            not saved — is missing: Kumo bills it as nothing and does not guess, though the servers may have
            run meanwhile. Less than {NOTABLE_MISSING_SECONDS / 60} minutes is not shown: it is the time since
            the agent&apos;s last report, which it sends every minute by default.
          </p>
        </div>
      )}
      {report.unpriced.length > 0 && (
        <p className="muted">
          Not priced (billed as nothing until a price is set):{' '}
          {report.unpriced.map((u) => (u.plan ? `${u.meter} (${u.plan})` : u.meter)).join(', ')}.
        </p>
      )}
      <h2>Daily cost by project</h2>
      <DailyChart report={report} />
      <p className="hint">
        Each day is rounded on its own: the days need not add up exactly to the month, which the invoice
        bills.
      </p>
    </>
  );
}

/** The org's cost per project, each with its own billing view and its budget as last checked. */
function ProjectCosts({ org, report }: { org: string; report: CostReport }) {
  const { items } = useLiveCollection('/v1/projects');
  const { currency } = report;
  const budgetOf = (project: string): string => {
    const resource = items?.find((p) => p.metadata.name === project);
    const spec = resource?.spec.budget as Budget | undefined;
    const status = resource?.status.budget as BudgetStatus | undefined;
    if (!spec) return '—';
    const amount = `${spec.amount}${currency ? ` ${currency}` : ''}`;
    return status?.amount === spec.amount ? `${status.percent} % of ${amount}` : `${amount}, not checked yet`;
  };
  return (
    <>
      <h2>Projects</h2>
      <table className="list" aria-label="Cost by project">
        <thead>
          <tr>
            <th>Project</th>
            <th>Month to date</th>
            <th>Budget this month</th>
          </tr>
        </thead>
        <tbody>
          {report.projects.map((p) => (
            <tr key={p.project} data-project={p.project}>
              <td>
                <a href={`#/o/${org}/billing/${p.project}`}>{p.project}</a>
              </td>
              <td>{money(p.total, currency)}</td>
              <td>{budgetOf(p.project)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function Resources({ report }: { report: CostReport }) {
  return (
    <>
      <h2>Resources</h2>
      <table className="list" aria-label="Cost by resource">
        <thead>
          <tr>
            <th>Resource</th>
            <th>Month to date</th>
            <th>Missing</th>
          </tr>
        </thead>
        <tbody>
          {report.resources.map((r) => (
            <tr key={r.uid} data-resource={r.name}>
              <td>
                {r.project}/{r.name}
                {r.deleted && <span className="muted"> (deleted)</span>}
              </td>
              <td>{money(r.total, report.currency)}</td>
              <td>
                {r.coverage.missingSeconds >= NOTABLE_MISSING_SECONDS
                  ? duration(r.coverage.missingSeconds)
                  : '—'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
