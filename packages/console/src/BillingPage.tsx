import { useEffect, useRef, useState } from 'react';
import type { BudgetStatus, Resource } from '@kumo/api';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, problemText, saveFile } from './api.js';

/** The part of the cost report (GET …/cost, docs/billing.md) this page shows. Amounts in minor units. */
interface CostReport {
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
    coverage: { missingSeconds: number };
  }>;
  unpriced: Array<{ meter: string; plan: string }>;
}

interface InvoiceSummary {
  number: string;
  kind: 'invoice' | 'credit-note';
  period: { month: string };
  issuedAt: string;
  currency: string;
  total: number;
}

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

/**
 * Minor units as money in currency, e.g. 4150 EUR as "€41.50". The integer is divided only here,
 * for display; without a currency (no price yet) the bare number.
 */
function money(minor: number, currency: string | undefined): string {
  if (!currency) return String(minor);
  const format = new Intl.NumberFormat(undefined, { style: 'currency', currency });
  return format.format(minor / 10 ** (format.resolvedOptions().maximumFractionDigits ?? 2));
}

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
 * An org's billing (for who has costs.read): the month's cost to date and forecast, a chart of the
 * daily cost per project, the cost per project and resource, the invoices to download and the
 * budget. Previous months through the month picker. A caller who may not see cost gets the API's answer.
 */
export function BillingPage({ org }: { org: string }) {
  const [month, setMonth] = useState<string>();
  const [current, setCurrent] = useState<string>();
  const [report, setReport] = useState<CostReport>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let live = true;
    setError(undefined);
    api.get<CostReport>(`/v1/orgs/${org}/cost${month ? `?month=${month}` : ''}`).then(
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
  }, [org, month]);

  return (
    <section>
      <div className="bar">
        <h1>Billing of {org}</h1>
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
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : !report ? (
        <p className="muted">Loading…</p>
      ) : (
        <Cost report={report} />
      )}
      {!error && (
        <>
          <Invoices org={org} />
          <OrgBudget org={org} />
        </>
      )}
    </section>
  );
}

function Cost({ report }: { report: CostReport }) {
  const { currency } = report;
  const missing = report.resources.filter((r) => r.coverage.missingSeconds > 0);
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
        <p className="bad" role="status">
          Missing time, billed as nothing:{' '}
          {missing.map((r) => `${r.project}/${r.name} ${duration(r.coverage.missingSeconds)}`).join(', ')}.
        </p>
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
      <h2>Projects</h2>
      <table className="list" aria-label="Cost by project">
        <thead>
          <tr>
            <th>Project</th>
            <th>Month to date</th>
          </tr>
        </thead>
        <tbody>
          {report.projects.map((p) => (
            <tr key={p.project} data-project={p.project}>
              <td>{p.project}</td>
              <td>{money(p.total, currency)}</td>
            </tr>
          ))}
        </tbody>
      </table>
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
              <td>{money(r.total, currency)}</td>
              <td>{r.coverage.missingSeconds > 0 ? duration(r.coverage.missingSeconds) : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

const COLOURS = ['#2557d6', '#e07b00', '#1e7b34', '#9c27b0', '#b3261e', '#00838f', '#6d4c41'];

/**
 * The month's daily cost as bars stacked per project: each series is drawn at the sum of its
 * project and the ones before it, tallest first, so that each project shows its own part.
 */
function DailyChart({ report }: { report: CostReport }) {
  const box = useRef<HTMLDivElement>(null);
  const { currency } = report;
  useEffect(() => {
    const [year, month] = report.period.month.split('-').map(Number) as [number, number];
    const length = new Date(Date.UTC(year, month, 0)).getUTCDate();
    const projects = [...new Set(report.days.map((d) => d.project))].sort();
    const digits = currency
      ? (new Intl.NumberFormat(undefined, { style: 'currency', currency }).resolvedOptions()
          .maximumFractionDigits ?? 2)
      : 0;
    // Minor units per project and day, summed as integers; divided only for the chart's scale.
    const own = projects.map(() => new Array<number>(length).fill(0));
    for (const d of report.days) own[projects.indexOf(d.project)]![Number(d.date.slice(8)) - 1]! += d.amount;
    const stacked = own.map((_, j) =>
      own[0]!.map((__, day) => own.slice(0, j + 1).reduce((sum, row) => sum + row[day]!, 0)),
    );
    const order = projects.map((_, j) => projects.length - 1 - j);
    const major = (minor: number) => minor / 10 ** digits;
    const chart = new uPlot(
      {
        width: Math.max(300, box.current!.clientWidth),
        height: 260,
        scales: { x: { time: false, range: [0.5, length + 0.5] } },
        axes: [
          { label: 'Day', values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) },
          {
            size: 80,
            values: (_u, ticks) => ticks.map((t) => money(Math.round(t * 10 ** digits), currency)),
          },
        ],
        series: [
          { label: 'Day' },
          ...order.map((j) => ({
            label: projects[j]!,
            stroke: COLOURS[j % COLOURS.length]!,
            fill: COLOURS[j % COLOURS.length]!,
            paths: uPlot.paths.bars!({ size: [0.7, 40] }),
            points: { show: false },
            value: (_u: uPlot, _v: number | null, _s: number, day: number | null) =>
              day === null ? '—' : money(own[j]![day]!, currency),
          })),
        ],
      },
      [Array.from({ length }, (_, i) => i + 1), ...order.map((j) => stacked[j]!.map(major))],
      box.current!,
    );
    return () => chart.destroy();
  }, [report, currency]);
  return (
    <div
      ref={box}
      className="chart"
      role="img"
      aria-label={`Daily cost by project in ${report.period.month}`}
      data-series={[...new Set(report.days.map((d) => d.project))].sort().join(',')}
    />
  );
}

function Invoices({ org }: { org: string }) {
  const [items, setItems] = useState<InvoiceSummary[]>();
  const [error, setError] = useState('');
  useEffect(() => {
    api.get<{ items: InvoiceSummary[] }>(`/v1/orgs/${org}/invoices`).then(
      (l) => setItems(l.items),
      (err: unknown) => setError(problemText(err)),
    );
  }, [org]);
  const download = async (number: string, format: 'pdf' | 'csv') => {
    setError('');
    try {
      saveFile(await api.download(`/v1/orgs/${org}/invoices/${number}/${format}`));
    } catch (err) {
      setError(problemText(err));
    }
  };
  return (
    <>
      <h2>Invoices</h2>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {!items ? (
        !error && <p className="muted">Loading…</p>
      ) : items.length === 0 ? (
        <p className="empty">
          No invoices yet: a month is invoiced an hour after it ends in the org&apos;s time zone.
        </p>
      ) : (
        <table className="list" aria-label="Invoices">
          <thead>
            <tr>
              <th>Number</th>
              <th>Month</th>
              <th>Issued (UTC)</th>
              <th>Total</th>
              <th>Download</th>
            </tr>
          </thead>
          <tbody>
            {items.map((i) => (
              <tr key={i.number} data-invoice={i.number}>
                <td>
                  {i.number}
                  {i.kind === 'credit-note' && <span className="muted"> (credit note)</span>}
                </td>
                <td>{i.period.month}</td>
                <td>{i.issuedAt.slice(0, 16).replace('T', ' ')}</td>
                <td>{money(i.total, i.currency)}</td>
                <td>
                  <button type="button" onClick={() => void download(i.number, 'pdf')}>
                    PDF {i.number}
                  </button>{' '}
                  <button type="button" onClick={() => void download(i.number, 'csv')}>
                    CSV {i.number}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/** The org's budget as the budget watcher last checked it (status.budget, WithinBudget). */
function OrgBudget({ org }: { org: string }) {
  const [resource, setResource] = useState<Resource>();
  const [error, setError] = useState('');
  useEffect(() => {
    api.get<Resource>(`/v1/orgs/${org}`).then(setResource, (err: unknown) => setError(problemText(err)));
  }, [org]);
  const spec = resource?.spec.budget as { amount: string; thresholds: number[] } | undefined;
  const status = resource?.status.budget as BudgetStatus | undefined;
  const within = ((resource?.status.conditions ?? []) as Condition[]).find((c) => c.type === 'WithinBudget');
  return (
    <>
      <h2>Budget</h2>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : !resource ? (
        <p className="muted">Loading…</p>
      ) : !spec ? (
        <p className="empty">No budget: an owner or admin sets one in the org&apos;s spec.budget.</p>
      ) : (
        <dl className="facts" aria-label="Budget">
          <dt>Amount</dt>
          <dd>
            {spec.amount} a month; thresholds {spec.thresholds.join(', ')} %
          </dd>
          {status ? (
            <>
              <dt>Used ({status.month})</dt>
              <dd>
                <meter min={0} max={100} value={Math.min(status.percent, 100)} /> {status.percent} %
                {status.crossed > 0 && `, past ${status.crossed} %`}
              </dd>
              <dt>Forecast</dt>
              <dd>{status.forecastPercent} %</dd>
            </>
          ) : (
            <>
              <dt>Used</dt>
              <dd className="muted">Not checked yet (every 5 minutes, once there is a price).</dd>
            </>
          )}
          {within && (
            <>
              <dt>WithinBudget</dt>
              <dd className={within.status === 'True' ? 'ok' : 'bad'}>
                {within.status} ({within.reason}): {within.message}
              </dd>
            </>
          )}
        </dl>
      )}
    </>
  );
}
