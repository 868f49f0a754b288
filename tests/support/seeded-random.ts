/**
 * A small seeded pseudo-random generator (mulberry32): the same seed gives the same sequence, so a
 * test that draws its choices from it can be replayed exactly.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  /** One of the choices, each as likely as its weight. */
  weighted<T>(choices: ReadonlyArray<readonly [T, number]>): T {
    const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
    let draw = this.next() * total;
    for (const [choice, weight] of choices) {
      draw -= weight;
      if (draw < 0) return choice;
    }
    return choices.at(-1)![0];
  }

  /** Some of the items (each with probability p), in a random order. */
  subset<T>(items: readonly T[], probability: number): T[] {
    const chosen = items.filter(() => this.chance(probability));
    for (let i = chosen.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [chosen[i], chosen[j]] = [chosen[j]!, chosen[i]!];
    }
    return chosen;
  }
}

/** The seed in `value` (a decimal integer, e.g. from an environment variable), or a fresh random one. */
export function seedFrom(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return Math.floor(Math.random() * 2 ** 31);
  const seed = Number(value);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new Error(`Not a seed (a non-negative integer): "${value}"`);
  return seed;
}
