import type { Condition, Resource } from '@kumo/api';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { itemPath, resolveKind } from '../core/kinds.js';
import { table, writeOutput } from '../core/output.js';
import { type Runtime, invocation } from '../core/runtime.js';
import { getResource } from './resources.js';

interface Event {
  type: string;
  reason: string;
  message: string;
  count: number;
  lastTimestamp: string;
}

/** How long ago, in the largest unit that fits ("45s", "3m", "2h", "5d"). */
export function age(since: string | undefined, now = Date.now()): string {
  if (!since) return '';
  const s = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

const indent = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');

/** One readable page: identity, spec, status, conditions with their reasons, and recent events. */
export function describePage(r: Resource, events: Event[], now = Date.now()): string {
  const m = r.metadata;
  const status = { ...(r.status as Record<string, unknown>) };
  const conditions = (status.conditions ?? []) as Condition[];
  delete status.conditions;
  const labels = Object.entries(m.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  const lines = [
    `Name:         ${m.name}`,
    `Kind:         ${r.kind}`,
    ...(m.project ? [`Project:      ${m.project}`] : []),
    `UID:          ${m.uid}`,
    `Created:      ${m.createdAt} (${age(m.createdAt, now)} ago)`,
    `Generation:   ${m.generation} (observed ${String(status.observedGeneration ?? 'not yet')})`,
    ...(status.phase ? [`Phase:        ${String(status.phase)}`] : []),
    `Labels:       ${labels.join(', ') || '<none>'}`,
    ...(m.deletionTimestamp ? [`Deleting:     since ${m.deletionTimestamp}`] : []),
    'Spec:',
    indent(stringify(r.spec)),
    'Status:',
    indent(Object.keys(status).length ? stringify(status) : '{}'),
    'Conditions:',
    conditions.length
      ? indent(
          table(
            ['TYPE', 'STATUS', 'REASON', 'AGE', 'MESSAGE'],
            conditions.map((c) => [
              c.type,
              c.status,
              c.reason,
              age(c.lastTransitionTime, now),
              c.message ?? '',
            ]),
          ),
        )
      : '  <none>',
    `Events (the last ${Math.min(events.length, 10)} of ${events.length}):`,
    events.length
      ? indent(
          table(
            ['LAST SEEN', 'TYPE', 'REASON', 'COUNT', 'MESSAGE'],
            events
              .slice(-10)
              .map((e) => [
                `${age(e.lastTimestamp, now)} ago`,
                e.type,
                e.reason,
                String(e.count),
                e.message.split('\n')[0]!,
              ]),
          ),
        )
      : '  <none>',
  ];
  return `${lines.join('\n')}\n`;
}

export function registerDescribeCommand(program: Command, runtime: Runtime): void {
  program
    .command('describe')
    .description('One resource on one readable page: spec, status, conditions with reasons, recent events.')
    .argument('<kind>', 'a kind, as for kumo get (db for databases)')
    .argument('<name>')
    .addHelpText('after', '\nExamples:\n  kumo describe db orders\n  kumo describe org acme -o json')
    .action(async (kind: string, name: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const def = resolveKind(kind);
      const resource = await getResource(inv, def, name);
      const { items } = await inv.client.request<{ items: Event[] }>(
        'GET',
        `${itemPath(def, inv.project, name)}/events`,
      );
      writeOutput(runtime.stdout, inv.format, { resource, events: items }, () =>
        describePage(resource, items),
      );
    });
}
