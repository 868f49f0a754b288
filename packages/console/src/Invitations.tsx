import { useCallback, useEffect, useState } from 'react';
import type { InvitationInfo } from '@kumo/api';
import { ApiError, api } from './api.js';
import { FormProblem } from './fields.js';

/**
 * The signed-in user's pending invitations (to `org` only, when given), each with Accept and
 * Decline. Accepting reloads the console, so that the org it joined appears with what the new
 * role may see. Shows nothing when there are none.
 */
export function MyInvitations({ org }: { org?: string }) {
  const [items, setItems] = useState<InvitationInfo[]>([]);
  const [error, setError] = useState<ApiError>();
  const load = useCallback(
    () =>
      api
        .get<{ items: InvitationInfo[] }>('/v1/invitations')
        .then((l) => setItems(l.items.filter((i) => org === undefined || i.org === org))),
    [org],
  );
  useEffect(() => void load().catch(() => undefined), [load]);
  const answer = async (i: InvitationInfo, verb: 'accept' | 'decline') => {
    setError(undefined);
    try {
      await api.post(`/v1/invitations/${i.id}/${verb}`);
      if (verb === 'accept') {
        location.hash = `#/o/${i.org}`;
        location.reload();
      } else {
        await load();
      }
    } catch (err) {
      if (err instanceof ApiError) setError(err);
    }
  };
  if (items.length === 0 && !error) return null;
  return (
    <>
      <h2>Invitations</h2>
      <ul className="invitations" aria-label="Your invitations">
        {items.map((i) => (
          <li key={i.id} data-invitation={i.org}>
            You are invited to <strong>{i.org}</strong> as {i.role}
            {i.projects ? ` in ${i.projects.join(', ') || 'no project'}` : ''} by {i.invitedBy}, until{' '}
            {i.expiresAt.slice(0, 10)}.{' '}
            <button type="button" onClick={() => void answer(i, 'accept')}>
              Accept {i.org}
            </button>{' '}
            <button type="button" className="destructive" onClick={() => void answer(i, 'decline')}>
              Decline {i.org}
            </button>
          </li>
        ))}
      </ul>
      <FormProblem error={error} />
    </>
  );
}
