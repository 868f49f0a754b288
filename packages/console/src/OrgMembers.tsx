import { type FormEvent, useCallback, useEffect, useState } from 'react';
import type { InvitationInfo, MemberInfo } from '@kumo/api';
import { ApiError, api, problemText } from './api.js';
import { Field, FormProblem, TextField } from './fields.js';
import { ROLES } from './roles.js';

/**
 * The org's members and, for owners and admins, its pending invitations and one form: a member's
 * name changes their role, any other name is invited (they join when they accept).
 */
export function Members({ org, manage, owner }: { org: string; manage: boolean; owner: boolean }) {
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
