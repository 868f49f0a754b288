import type { ResourceKey } from '../../store/resource-rows.js';

export interface ReconcileResult {
  /** Reconcile this key again after this long, even if nothing changes (polling an external state). */
  requeueAfterMs?: number;
}

/**
 * Drives one kind towards its desired state, after controller-runtime: reconcile gets only the key,
 * re-reads everything, makes one step, and is idempotent and safe to kill at any line. A thrown error
 * is retried with per-key backoff; a TerminalError is not retried but shown in the resource's status.
 */
export interface Reconciler {
  /** For logs and metrics. */
  readonly name: string;
  /** The kind whose changes wake this reconciler. */
  readonly kind: string;
  reconcile(key: ResourceKey, signal: AbortSignal): Promise<ReconcileResult | void>;
}

/** A failure retrying will not fix (bad spec, unsupported request). `reason` is a CamelCase condition reason. */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
