import type { InputHTMLAttributes, ReactNode } from 'react';

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
