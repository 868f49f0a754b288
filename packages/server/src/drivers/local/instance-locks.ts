/**
 * One step at a time per instance: whoever takes an instance's lock waits until every earlier
 * holder has released it. Nothing is kept for an instance nobody holds.
 */
export class InstanceLocks {
  /** Per instance: the tail of the chain of holders waiting for each other. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Resolves with the release once every earlier holder has released. Never rejects. */
  take(uid: string): Promise<() => void> {
    const previous = this.tails.get(uid) ?? Promise.resolve();
    let release!: () => void;
    const held = previous.then(() => new Promise<void>((resolve) => (release = resolve)));
    this.tails.set(uid, held);
    void held.then(() => {
      if (this.tails.get(uid) === held) this.tails.delete(uid);
    });
    return previous.then(() => release);
  }

  /** Whether anyone holds or waits for the instance's lock. */
  held(uid: string): boolean {
    return this.tails.has(uid);
  }
}
