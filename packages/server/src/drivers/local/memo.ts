import type { EngineContext } from './local-engine.js';

/** Each key's value made once and kept; a make that fails is forgotten, so the next call tries again. */
export class Memo<T> {
  private readonly made = new Map<string, Promise<T>>();

  get(key: string, make: () => Promise<T>): Promise<T> {
    let pending = this.made.get(key);
    if (!pending) {
      pending = make();
      pending.catch(() => this.made.delete(key));
      this.made.set(key, pending);
    }
    return pending;
  }
}

const versions = new Memo<string>();

/** What `binary --version` prints (for backup manifests), asked once per binary. */
export function toolVersion(ctx: EngineContext, binary: string): Promise<string> {
  return versions.get(binary, async () =>
    (await ctx.as.run(binary, ['--version'], { cwd: ctx.paths.root })).stdout.trim(),
  );
}
