import { type FormEvent, useEffect, useState } from 'react';
import type { Budget, BudgetStatus } from '@kumo/api';
import { ApiError, api } from './api.js';
import { FormProblem, TextField } from './fields.js';
import { useLiveCollection } from './live.js';

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

const DEFAULT_THRESHOLDS = '50, 80, 100';

/**
 * The monthly budget of an org or a project (its spec.budget) as Kumo last checked it (status.budget
 * and the WithinBudget condition, written every 5 minutes: the resource is followed through the
 * watch stream, so the figures appear by themselves). With `editable` (for roles that may update
 * the org or project), a form that sets, changes or removes it with a merge patch.
 */
export function BudgetPanel({
  kind,
  name,
  currency,
  editable,
}: {
  kind: 'org' | 'project';
  name: string;
  currency: string | undefined;
  editable: boolean;
}) {
  const collection = kind === 'org' ? '/v1/orgs' : '/v1/projects';
  const path = `${collection}/${name}`;
  const title = `${kind} ${name}`;
  const { items, error } = useLiveCollection(collection);
  const resource = items?.find((r) => r.metadata.name === name);
  const spec = resource?.spec.budget as Budget | undefined;
  const status = resource?.status.budget as BudgetStatus | undefined;
  const within = ((resource?.status.conditions ?? []) as Condition[]).find((c) => c.type === 'WithinBudget');
  const checked = status && status.amount === spec?.amount ? status : undefined;
  return (
    <>
      <h2>Budget of {title}</h2>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : !resource ? (
        <p className="muted">Loading…</p>
      ) : !spec ? (
        <p className="empty">
          No budget for {title}.{!editable && ' An owner or admin sets one.'}
        </p>
      ) : (
        <dl className="facts" aria-label={`Budget of ${title}`}>
          <dt>Amount</dt>
          <dd data-testid="budget-amount">{[spec.amount, currency].filter(Boolean).join(' ')} a month</dd>
          <dt>Thresholds</dt>
          <dd>
            {spec.thresholds.join(', ')} %{' '}
            <span className="muted">(a warning event when one is crossed)</span>
          </dd>
          {checked ? (
            <>
              <dt>Used ({checked.month})</dt>
              <dd data-testid="budget-used">
                <meter
                  min={0}
                  max={100}
                  low={80}
                  high={99}
                  optimum={0}
                  value={Math.min(checked.percent, 100)}
                />{' '}
                {checked.percent} %{checked.crossed > 0 && `, past the ${checked.crossed} % threshold`}
              </dd>
              <dt>Forecast</dt>
              <dd data-testid="budget-forecast">{checked.forecastPercent} % by the end of the month</dd>
            </>
          ) : (
            <>
              <dt>Used</dt>
              <dd className="muted">
                Not checked yet: Kumo checks budgets every 5 minutes, once the price book has a price.
              </dd>
            </>
          )}
          {within && checked && (
            <>
              <dt>WithinBudget</dt>
              <dd className={within.status === 'True' ? 'ok' : 'bad'} data-testid="within-budget">
                {within.status} ({within.reason}): {within.message}
              </dd>
            </>
          )}
        </dl>
      )}
      {editable && resource && <BudgetForm budget={spec} path={path} title={title} currency={currency} />}
    </>
  );
}

function BudgetForm({
  budget,
  path,
  title,
  currency,
}: {
  budget: Budget | undefined;
  path: string;
  title: string;
  currency: string | undefined;
}) {
  const [amount, setAmount] = useState('');
  const [thresholds, setThresholds] = useState(DEFAULT_THRESHOLDS);
  const [error, setError] = useState<ApiError>();
  const [notice, setNotice] = useState('');
  // The fields start from the budget as it is, and again whenever someone changes it.
  const shown = JSON.stringify(budget ?? null);
  useEffect(() => {
    const b = JSON.parse(shown) as Budget | null;
    setAmount(b?.amount ?? '');
    setThresholds(b ? b.thresholds.join(', ') : DEFAULT_THRESHOLDS);
  }, [shown]);
  const save = async (change: Budget | null, done: string) => {
    setError(undefined);
    setNotice('');
    try {
      await api.patch(path, { spec: { budget: change } });
      setNotice(done);
    } catch (err) {
      if (err instanceof ApiError) setError(err);
    }
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const list = thresholds
      .split(/[\s,]+/)
      .filter(Boolean)
      .map(Number);
    void save(
      { amount: amount.trim(), thresholds: list.length > 0 ? list : [50, 80, 100] },
      `The budget of ${title} is saved; Kumo checks it within 5 minutes.`,
    );
  };
  return (
    <>
      <form className="inline" aria-label={`Budget of ${title}`} onSubmit={submit}>
        <TextField
          label={`Budget amount${currency ? ` (${currency})` : ''}`}
          id="budget-amount"
          inputMode="decimal"
          placeholder="500.00"
          value={amount}
          onChange={setAmount}
          required
          error={error?.fieldError('spec.budget.amount')}
        />
        <TextField
          label="Thresholds (% of the budget, ascending)"
          id="budget-thresholds"
          value={thresholds}
          onChange={setThresholds}
          error={error?.fieldError('spec.budget.thresholds')}
        />
        <button type="submit">Save budget</button>
        {budget && (
          <button
            type="button"
            className="destructive"
            onClick={() => void save(null, `The budget of ${title} is removed.`)}
          >
            Remove budget
          </button>
        )}
      </form>
      <FormProblem error={error} />
      {notice && <p role="status">{notice}</p>}
    </>
  );
}
