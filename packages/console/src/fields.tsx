import type { InputHTMLAttributes, ReactNode } from 'react';
import type { ApiError } from './api.js';

/** A labelled text (or number) input with its error; onChange gets the new value. */
export function TextField({
  label,
  id,
  error,
  onChange,
  ...input
}: { label: string; id: string; error?: string; onChange: (value: string) => void } & Omit<
  InputHTMLAttributes<HTMLInputElement>,
  'id' | 'onChange'
>) {
  return (
    <Field label={label} id={id} error={error}>
      <input id={id} onChange={(e) => onChange(e.target.value)} {...input} />
    </Field>
  );
}

/** A label, the control it labels, and the API's error for it (announced, and linked by id). */
export function Field({
  label,
  error,
  children,
  id,
}: {
  label: string;
  error?: string | undefined;
  children: ReactNode;
  id: string;
}) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children}
      {error && (
        <span className="error" role="alert" id={`${id}-error`}>
          {error}
        </span>
      )}
    </div>
  );
}

/** A form's problem that names no field (the field errors show at their fields). */
export function FormProblem({ error }: { error: ApiError | undefined }) {
  if (!error || error.problem.errors?.length) return null;
  return (
    <p className="error" role="alert">
      {error.problem.detail}
    </p>
  );
}
