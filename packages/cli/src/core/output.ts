import type { Condition, Resource } from '@kumo/api';
import { stringify } from 'yaml';
import { CliError, EXIT } from './exit-codes.js';

export type OutputFormat = 'table' | 'json' | 'yaml';

export function parseFormat(value: string | undefined): OutputFormat {
  const format = value ?? 'table';
  if (format !== 'table' && format !== 'json' && format !== 'yaml') {
    throw new CliError(`--output must be table, json or yaml (got "${format}").`, EXIT.usage);
  }
  return format;
}

/** Any answer as JSON or YAML, for programs. */
export function formatData(format: 'json' | 'yaml', value: unknown): string {
  return format === 'json' ? JSON.stringify(value, null, 2) + '\n' : stringify(value);
}

/**
 * Writes an answer: the full data as JSON or YAML for programs, or what asTable renders for people
 * (only called for tables).
 */
export function writeOutput(
  out: NodeJS.WritableStream,
  format: OutputFormat,
  value: unknown,
  asTable: () => string,
): void {
  out.write(format === 'table' ? asTable() : formatData(format, value));
}

/** Resources for people (a table) or for programs (the full objects, which `kumo apply` accepts back). */
export function formatResources(resources: Resource[], format: OutputFormat, single: boolean): string {
  if (format === 'json') return formatData('json', single ? resources[0] : resources);
  if (format === 'yaml') return resources.map((r) => stringify(r)).join('---\n');
  return table(
    ['NAME', ...(resources.some((r) => r.metadata.project) ? ['PROJECT'] : []), 'PHASE', 'DETAIL', 'AGE'],
    resources.map((r) => [
      r.metadata.name,
      ...(resources.some((x) => x.metadata.project) ? [r.metadata.project ?? ''] : []),
      String(r.status.phase ?? '-'),
      detail(r),
      age(r.metadata.createdAt),
    ]),
  );
}

/** A one-line summary of what matters about a resource. */
function detail(r: Resource): string {
  if (r.kind === 'Database') {
    const spec = r.spec as { engine: string; version: string; plan: string };
    const endpoint = (r.status as { endpoint?: { host: string; port: number } }).endpoint;
    const reason = notReadyReason(r);
    return [
      `${spec.engine} ${spec.version}`,
      spec.plan,
      endpoint ? `${endpoint.host}:${endpoint.port}` : '',
      reason,
    ]
      .filter(Boolean)
      .join('  ');
  }
  if (r.kind === 'Backup') {
    const s = r.status as {
      object?: { size: number };
      verification?: { state: string };
      conditions?: Condition[];
    };
    const failed = s.conditions?.find((c) => c.type === 'Succeeded' && c.status === 'False');
    return [
      `db ${(r.spec as { database: string }).database}`,
      s.object ? formatBytes(s.object.size) : '',
      s.verification ? `verification ${s.verification.state}` : '',
      failed ? `${failed.reason}: ${failed.message.split('\n')[0]}` : '',
    ]
      .filter(Boolean)
      .join('  ');
  }
  if (r.kind === 'Project') return `org ${(r.spec as { org: string }).org}`;
  if (r.kind === 'Target') return `driver ${(r.spec as { driver: string }).driver}`;
  return notReadyReason(r);
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function notReadyReason(r: Resource): string {
  const ready = (r.status.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');
  return ready && ready.status !== 'True'
    ? `${ready.reason}${ready.message ? `: ${ready.message.split('\n')[0]}` : ''}`
    : '';
}

export function table(headers: string[], rows: string[][]): string {
  if (rows.length === 0) return 'No resources found.\n';
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

function age(iso: string): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
