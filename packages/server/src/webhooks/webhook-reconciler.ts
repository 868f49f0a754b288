import { type Condition, setCondition } from '@kumo/api';
import type { ResourceKey } from '../store/resource-rows.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { Reconciler } from '../controllers/runtime/reconciler.js';
import type { StatusWriter } from '../controllers/runtime/status-writer.js';
import { type WebhookSecrets, secretHint } from './webhook-secrets.js';

/**
 * A Webhook's status: Ready once it has a signing secret (its deliveries wait until then), with the
 * secret's version and hint, never the secret. Idempotent; writes nothing when nothing changed.
 */
export class WebhookReconciler implements Reconciler {
  readonly name = 'webhook-status';
  readonly kind = 'Webhook';

  constructor(
    private readonly store: ResourceStore,
    private readonly status: StatusWriter,
    private readonly secrets: WebhookSecrets,
  ) {}

  async reconcile(key: ResourceKey): Promise<void> {
    const webhook = await this.store.get(key);
    if (!webhook || webhook.metadata.deletionTimestamp) return;
    const secret = await this.secrets.read(webhook.metadata.uid);
    await this.status.update(key, (current) => ({
      phase: secret ? 'Ready' : 'Pending',
      conditions: setCondition(
        current.status.conditions as Condition[] | undefined,
        secret
          ? {
              type: 'Ready',
              status: 'True',
              reason: 'Delivering',
              message: '',
              observedGeneration: current.metadata.generation,
            }
          : {
              type: 'Ready',
              status: 'False',
              reason: 'NoSecret',
              message: `Deliveries wait for a signing secret: POST …/webhooks/${key.name}/secret/rotate (kumo webhook rotate-secret ${key.name}).`,
              observedGeneration: current.metadata.generation,
            },
      ),
      ...(secret
        ? {
            secret: { version: secret.version, hint: secretHint(secret.secret), rotatedAt: secret.rotatedAt },
          }
        : {}),
    }));
  }
}
