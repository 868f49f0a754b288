import { type Resource, WEBHOOK_TYPES, type WebhookDelivery, webhookKind } from '@kumo/api';
import { type Command, Option } from 'commander';
import { CliError, EXIT } from '../core/exit-codes.js';
import { collectionPath, itemPath, nounOf } from '../core/kinds.js';
import { formatData, table, writeOutput } from '../core/output.js';
import { type Invocation, type Runtime, invocation } from '../core/runtime.js';
import { parseLabels } from './resources.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Makes a new signing secret for the webhook; the answer is the only place it is ever shown. */
export async function rotateSecret(
  inv: Invocation,
  name: string,
): Promise<{ secret: string; version: number }> {
  return inv.client.request('POST', `${itemPath(webhookKind, inv.project, name)}/secret/rotate`);
}

/** Creates the webhook and its signing secret (deliveries wait for one). */
export async function createWebhook(
  inv: Invocation,
  name: string,
  spec: { url: string; kinds?: string[]; types?: string[]; description?: string },
  labels: Record<string, string>,
): Promise<{ webhook: Resource; secret: string }> {
  const webhook = await inv.client.request<Resource>('POST', collectionPath(webhookKind, inv.project), {
    body: { metadata: { name, labels }, spec },
  });
  return { webhook, secret: (await rotateSecret(inv, name)).secret };
}

/** `kumo webhook create|rotate-secret|ping|deliveries|redeliver`, beside the resource verbs list/get/delete/label. */
export function registerWebhookCommands(program: Command, runtime: Runtime): void {
  const group = program.commands.find((c) => c.name() === 'webhook');
  if (!group) throw new Error('the webhook resource commands must be registered first');
  group
    .command('create')
    .description(
      "Create a webhook: every change and event of the project's resources (or of --kind, --type) is POSTed to --url, signed. Prints its signing secret, once.",
    )
    .argument('<name>')
    .requiredOption('--url <url>', 'where deliveries are POSTed (http or https)')
    .option('--kind <kind>', 'only this kind, e.g. Database (repeatable)', collect)
    .addOption(
      new Option('--type <type>', 'only this type (repeatable)').choices(WEBHOOK_TYPES).argParser(collect),
    )
    .option('--description <text>', 'what it is for')
    .option('--label <key=value>', 'a label (repeatable)', collect)
    .addHelpText(
      'after',
      '\nExamples:\n  kumo webhook create ci --url https://ci.example.com/kumo -p shop\n  kumo webhook create alerts --url https://hooks.example.com/x --kind Database --type Event\n\nVerify deliveries with the secret: docs/webhooks.md.',
    )
    .action(
      async (
        name: string,
        o: { url: string; kind?: string[]; type?: string[]; description?: string; label?: string[] },
        cmd: Command,
      ) => {
        const inv = await invocation(runtime, cmd);
        const made = await createWebhook(
          inv,
          name,
          {
            url: o.url,
            ...(o.kind ? { kinds: o.kind } : {}),
            ...(o.type ? { types: o.type } : {}),
            ...(o.description ? { description: o.description } : {}),
          },
          parseLabels(o.label),
        );
        if (inv.format !== 'table') return void runtime.stdout.write(formatData(inv.format, made));
        runtime.stdout.write(
          `webhook/${name} created\nSigning secret (shown once; \`kumo webhook rotate-secret ${name}\` makes a new one):\n  ${made.secret}\n`,
        );
      },
    );

  group
    .command('rotate-secret')
    .description('Replace the signing secret at once and print the new one (the old one stops being used).')
    .argument('<name>')
    .addHelpText('after', '\nExample:\n  kumo webhook rotate-secret ci -p shop')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const made = await rotateSecret(inv, name);
      if (inv.format !== 'table') return void runtime.stdout.write(formatData(inv.format, made));
      runtime.stdout.write(
        `Signing secret of webhook/${name}, version ${made.version} (shown once):\n  ${made.secret}\n`,
      );
    });

  group
    .command('ping')
    .description(
      'Send a signed Ping to the webhook now and show how its receiver answered (not queued, not retried, not logged).',
    )
    .argument('<name>')
    .addHelpText('after', '\nExample:\n  kumo webhook ping ci -p shop')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const answer = await inv.client.request<{ ok: boolean; status: number | null; error: string | null }>(
        'POST',
        `${itemPath(webhookKind, inv.project, name)}/ping`,
      );
      if (inv.format !== 'table') runtime.stdout.write(formatData(inv.format, answer));
      else if (answer.ok) runtime.stdout.write(`webhook/${name}: the receiver answered ${answer.status}\n`);
      if (!answer.ok) throw new CliError(`webhook/${name}: the ping failed: ${answer.error}`, EXIT.failure);
    });

  group
    .command('deliveries')
    .description("A webhook's delivery log, newest first: state, attempts, the receiver's last answer.")
    .argument('<name>')
    .addOption(new Option('--state <state>', 'only these').choices(['Pending', 'Succeeded', 'Failed']))
    .option('--limit <n>', 'at most this many (1-500)', '100')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo webhook deliveries ci -p shop\n  kumo webhook deliveries ci --state Failed -o json',
    )
    .action(async (name: string, o: { state?: string; limit: string }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const query = new URLSearchParams({ limit: o.limit, ...(o.state ? { state: o.state } : {}) });
      const { items } = await inv.client.request<{ items: WebhookDelivery[] }>(
        'GET',
        `${itemPath(webhookKind, inv.project, name)}/deliveries?${query}`,
      );
      writeOutput(runtime.stdout, inv.format, items, () =>
        table(
          ['ID', 'TYPE', 'OBJECT', 'STATE', 'ATTEMPTS', 'LAST ANSWER', 'NEXT TRY'],
          items.map((d) => [
            d.id,
            d.type,
            `${nounOf(d.resource.kind)}/${d.resource.name}`,
            d.state,
            String(d.attempts),
            d.lastError ?? (d.lastStatus === null ? '' : String(d.lastStatus)),
            d.nextAttemptAt ?? '',
          ]),
        ),
      );
    });

  group
    .command('redeliver')
    .description(
      'Send a delivery again now, and retry it as long as a new one; later ones of the same resource wait for it.',
    )
    .argument('<name>')
    .argument('<id>', 'the delivery id (kumo webhook deliveries)')
    .addHelpText('after', '\nExample:\n  kumo webhook redeliver ci 1234 -p shop')
    .action(async (name: string, id: string, _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const d = await inv.client.request<WebhookDelivery>(
        'POST',
        `${itemPath(webhookKind, inv.project, name)}/deliveries/${encodeURIComponent(id)}/redeliver`,
      );
      if (inv.format !== 'table') return void runtime.stdout.write(formatData(inv.format, d));
      runtime.stdout.write(`delivery ${d.id} of webhook/${name} is queued again\n`);
    });
}
