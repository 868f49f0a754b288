import { useEffect, useMemo, useState } from 'react';
import { type Resource, watchCollection } from './api.js';

/** Navigates the console (its routes are hash routes). */
export const go = (hash: string) => {
  location.hash = hash;
};

export const LOG_LINES = 200;

/** A collection kept up to date by the watch stream. */
export function useLiveCollection(path: string): { items: Resource[] | undefined; error: string } {
  const [items, setItems] = useState<Map<string, Resource>>();
  const [error, setError] = useState('');
  useEffect(() => {
    setItems(undefined);
    let seen = new Map<string, Resource>();
    let flush: number | undefined;
    const stop = watchCollection(
      path,
      (type, object) => {
        seen = new Map(seen);
        if (type === 'DELETED') seen.delete(object.metadata.name);
        else seen.set(object.metadata.name, object);
        clearTimeout(flush);
        flush = window.setTimeout(() => setItems(seen), 30);
      },
      setError,
    );
    // An empty collection sends no events: show it as empty once the stream is up.
    const empty = window.setTimeout(() => setItems((current) => current ?? seen), 800);
    return () => {
      stop();
      clearTimeout(flush);
      clearTimeout(empty);
    };
  }, [path]);
  const list = useMemo(
    () =>
      items ? [...items.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)) : undefined,
    [items],
  );
  return { items: list, error };
}

export function Phase({ r }: { r: Resource }) {
  const phase = String(r.status.phase ?? 'Pending');
  return <span className={`phase phase-${phase.toLowerCase()}`}>{phase}</span>;
}
