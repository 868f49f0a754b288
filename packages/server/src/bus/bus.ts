/**
 * A nudge: "this resource changed; look at it". Never the state itself — receivers re-read the store.
 * `id` is the outbox id: the same change may arrive more than once, with the same id.
 */
export interface BusMessage {
  id: string;
  kind: string;
  project: string;
  name: string;
  generation: number;
  /** The write that caused it: create, update, update-status, delete, remove-finalizer, … */
  action: string;
  /** The target whose agent should look: a Database's or Backup's target; absent for control-plane kinds. */
  target?: string;
}

export type BusHandler = (message: BusMessage) => Promise<void>;

/**
 * Carries nudges from the outbox relay to controllers and agents. Delivery is at-least-once: a
 * handler that rejects gets the message again later; handlers must be idempotent.
 */
export interface Bus {
  /**
   * Resolves once the bus has accepted the message (a durable bus: persisted and acknowledged by
   * its server). Rejects when it has not; the caller must then keep the message and retry.
   */
  publish(message: BusMessage): Promise<void>;
  /** Delivers messages about `kind` to handler until the returned function is called. */
  subscribe(kind: string, handler: BusHandler): () => void;
  /**
   * Whether the bus can take messages now. False while a networked bus re-establishes its
   * connection (commits still succeed: the outbox keeps their nudges until it is back) and once closed.
   */
  readonly connected: boolean;
  /** Stops delivery; publish rejects afterwards. Idempotent. */
  close(): Promise<void>;
}
