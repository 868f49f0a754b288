import type { Resource } from '@kumo/api';
import type { Command } from 'commander';
import { CliError, EXIT } from '../core/exit-codes.js';
import { type Invocation, type Runtime, invocation } from '../core/runtime.js';

/** Prints a new agent token for the target, and how to start its agent with it. */
export async function printAgentToken(runtime: Runtime, inv: Invocation, target: string): Promise<void> {
  const created = await inv.client.request<{ id: string; token: string }>(
    'POST',
    `/v1/targets/${encodeURIComponent(target)}/agent-tokens`,
  );
  runtime.stdout.write(
    `Agent token for target ${target} (shown once; stored hashed, id ${created.id}):\n  ${created.token}\n` +
      `Start its agent on the target's host:\n  KUMO_AGENT_TOKEN=${created.token} kumo agent --target ${target} --api ${inv.client.baseUrl} --nats-url nats://…\n`,
  );
}

/** `kumo target token|cordon|uncordon`: the operator's handles on a target besides its resource verbs. */
export function registerTargetCommands(program: Command, runtime: Runtime): void {
  const group = program.commands.find((c) => c.name() === 'target');
  if (!group) throw new Error('the target resource commands must be registered first');
  group
    .command('token')
    .description("Create a new token for the target's agent (revoke old ones with kumo token revoke).")
    .argument('<name>')
    .addHelpText('after', '\nExample:\n  kumo target token b')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await printAgentToken(runtime, await invocation(runtime, cmd), name);
    });
  for (const [verb, unschedulable, what] of [
    ['cordon', true, 'No new databases are placed on the target; those on it stay and keep running.'],
    ['uncordon', false, 'Placement may pick the target again.'],
  ] as const) {
    group
      .command(verb)
      .description(what)
      .argument('<name>')
      .addHelpText('after', `\nExample:\n  kumo target ${verb} b`)
      .action(async (name: string, _o: unknown, cmd: Command) => {
        const inv = await invocation(runtime, cmd);
        const res = await inv.client.request<Resource>('PATCH', `/v1/targets/${encodeURIComponent(name)}`, {
          body: { spec: { unschedulable } },
          contentType: 'application/merge-patch+json',
        });
        if (Boolean((res.spec as { unschedulable?: boolean }).unschedulable) !== unschedulable)
          throw new CliError(`target/${name} did not change`, EXIT.failure);
        runtime.stdout.write(`target/${name} ${verb}ed\n`);
      });
  }
}
