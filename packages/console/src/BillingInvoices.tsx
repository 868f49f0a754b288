import { useEffect, useState } from 'react';
import { api, problemText, saveFile } from './api.js';
import { money } from './money.js';

/** What the invoice list (GET /v1/orgs/{org}/invoices) gives of each document; amounts in minor units. */
interface InvoiceSummary {
  number: string;
  kind: 'invoice' | 'credit-note';
  period: { month: string };
  issuedAt: string;
  currency: string;
  total: number;
  corrects?: string;
}

/** An org's invoices and credit notes, newest first, each downloadable as PDF and CSV (fetched with the token). */
export function Invoices({ org }: { org: string }) {
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
              <th className="wide">Issued (UTC)</th>
              <th>Total</th>
              <th>Download</th>
            </tr>
          </thead>
          <tbody>
            {items.map((i) => (
              <tr key={i.number} data-invoice={i.number}>
                <td>
                  {i.number}
                  {i.kind === 'credit-note' && (
                    <span className="muted"> (credit note{i.corrects ? ` for ${i.corrects}` : ''})</span>
                  )}
                </td>
                <td>{i.period.month}</td>
                <td className="wide">{i.issuedAt.slice(0, 16).replace('T', ' ')}</td>
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
