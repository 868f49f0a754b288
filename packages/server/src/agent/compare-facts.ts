import type { DataFacts } from '../drivers/driver.js';

/** What differs between recorded and restored facts, or undefined. */
export function compareFacts(recorded: DataFacts['tables'], restored: DataFacts): string | undefined {
  const seen = new Map(restored.tables.map((t) => [t.name, t]));
  const diffs: string[] = [];
  for (const t of recorded) {
    const r = seen.get(t.name);
    if (!r) diffs.push(`${t.name} is missing`);
    else if (r.rows !== t.rows) diffs.push(`${t.name} has ${r.rows} rows, not ${t.rows}`);
    else if (r.checksum !== t.checksum) diffs.push(`${t.name} has other contents (checksum)`);
    seen.delete(t.name);
  }
  for (const extra of seen.keys()) diffs.push(`${extra} was not in the backup`);
  return diffs.length ? diffs.join('; ') : undefined;
}
