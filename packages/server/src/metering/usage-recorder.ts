import { INTERVAL_SECONDS, type MeterName, dimensionKey, intervalOf } from './meters.js';

/** What a usage sample is about: a resource on the agent's target. */
export interface MeteredSubject {
  uid: string;
  kind: string;
  project: string;
  name: string;
}

/**
 * What a resource accrues, per second, while it stays as seen: one rate per meter and dimensions
 * (a database's runtime per plan and its storage, a backup's bytes). What a kind accrues is its
 * own file's business (database-usage.ts, backup-usage.ts); the recorder only counts.
 */
export interface MeterRate {
  meter: MeterName;
  dimensions: Record<string, string>;
  /** Quantity units per second (an integer: 1 second, GB, bytes). */
  perSecond: number;
}

/**
 * One meter's usage of one resource in one quarter-hour: `seconds` of it were observed, adding up
 * to `quantity` (an integer, in the meter's unit-seconds, as a decimal string). Its key — target
 * (added by whoever receives it), resource, meter, dimensions and interval — is what makes a
 * report counted once however often it is sent. While its quarter-hour runs it is reported as it
 * grows (final false: the ledger keeps the largest); once the quarter-hour is over, final.
 */
export interface UsageSample {
  resourceUid: string;
  kind: string;
  project: string;
  name: string;
  meter: MeterName;
  dimensions: Record<string, string>;
  /** Epoch seconds; a multiple of INTERVAL_SECONDS. */
  intervalStart: number;
  seconds: number;
  quantity: string;
  final: boolean;
}

/** What survives a restart of the agent: intervals still open, and samples not yet acknowledged. */
export interface RecorderSnapshot {
  open: UsageSample[];
  outbox: UsageSample[];
}

interface Watched {
  subject: MeteredSubject;
  rates: readonly MeterRate[];
  /** Epoch second from which its rates hold. */
  since: number;
}

function sampleKey(s: Pick<UsageSample, 'resourceUid' | 'meter' | 'dimensions' | 'intervalStart'>): string {
  return `${s.resourceUid}|${s.meter}|${dimensionKey(s.dimensions)}|${s.intervalStart}`;
}

/**
 * The agent's meter: turns what it observes of each resource, moment by moment, into quarter-hour
 * samples. Its rates hold from one observation to the next (the agent observes every database at
 * least every 30 s, and at once at every change it makes or notices), so a plan change, a stop or
 * a deletion splits the usage at the second it was seen. An interval's sample is complete — and
 * moves to the outbox — once its quarter-hour has passed, or the resource's deletion finished.
 *
 * Time the agent did not see is not counted: after a restart the recorder starts from its
 * snapshot (the open intervals as of the last save) and the first observation; what lay between
 * is missing from the samples, never guessed (docs/billing.md).
 */
export class UsageRecorder {
  private readonly watched = new Map<string, Watched>();
  private readonly open = new Map<string, UsageSample>();
  private outbox: UsageSample[] = [];

  constructor(snapshot?: RecorderSnapshot) {
    for (const s of snapshot?.open ?? []) this.open.set(sampleKey(s), { ...s });
    this.outbox = [...(snapshot?.outbox ?? [])];
  }

  /** Subject as seen at epoch second t: from then on it accrues rates. */
  observe(subject: MeteredSubject, rates: readonly MeterRate[], t: number): void {
    const seen = this.watched.get(subject.uid);
    if (seen) this.accrue(seen, t);
    this.watched.set(subject.uid, {
      subject,
      rates: rates.map((r) => ({ ...r, dimensions: { ...r.dimensions } })),
      since: seen ? Math.max(seen.since, t) : t,
    });
  }

  /** The resource's instance is not there at epoch second t (not made yet, or lost): it accrues nothing until seen again. */
  absent(uid: string, t: number): void {
    const seen = this.watched.get(uid);
    if (seen) this.accrue(seen, t);
    this.watched.delete(uid);
  }

  /** The value of a dimension (a plan) in the rates uid accrues now, if it is watched and has one. */
  dimensionOf(uid: string, name: string): string | undefined {
    return this.watched.get(uid)?.rates.find((r) => r.dimensions[name] !== undefined)?.dimensions[name];
  }

  /** The resource stopped existing at epoch second t (its deletion finished): it accrues no more. */
  ended(uid: string, t: number): void {
    const seen = this.watched.get(uid);
    if (seen) this.accrue(seen, t);
    this.watched.delete(uid);
    for (const [key, sample] of this.open) {
      if (sample.resourceUid !== uid) continue;
      this.open.delete(key);
      this.outbox.push({ ...sample, final: true });
    }
  }

  /**
   * Counts every watched resource up to epoch second t and moves the intervals that ended by then
   * to the outbox. Returns the snapshot to save before anything is sent.
   */
  cut(t: number): RecorderSnapshot {
    for (const seen of this.watched.values()) this.accrue(seen, t);
    for (const [key, sample] of this.open) {
      if (sample.intervalStart + INTERVAL_SECONDS > t) continue;
      this.open.delete(key);
      this.outbox.push({ ...sample, final: true });
    }
    return this.snapshot();
  }

  /** Final samples waiting to be reported, oldest first. */
  pending(): readonly UsageSample[] {
    return this.outbox;
  }

  /** The intervals still running, as far as they got: reported for live cost, never acknowledged. */
  running(): UsageSample[] {
    return [...this.open.values()].map((s) => ({ ...s }));
  }

  /** Forgets the samples the control plane acknowledged. */
  acknowledged(samples: readonly UsageSample[]): RecorderSnapshot {
    const done = new Set(samples.map(sampleKey));
    this.outbox = this.outbox.filter((s) => !done.has(sampleKey(s)));
    return this.snapshot();
  }

  snapshot(): RecorderSnapshot {
    return { open: [...this.open.values()].map((s) => ({ ...s })), outbox: [...this.outbox] };
  }

  /** Adds [seen.since, t) of seen's rates to its intervals, and moves seen.since to t. */
  private accrue(seen: Watched, t: number): void {
    for (let from = seen.since; from < t;) {
      const start = intervalOf(from);
      const to = Math.min(t, start + INTERVAL_SECONDS);
      for (const rate of seen.rates)
        this.add(seen.subject, rate.meter, rate.dimensions, start, to - from, rate.perSecond);
      from = to;
    }
    seen.since = Math.max(seen.since, t);
  }

  private add(
    subject: MeteredSubject,
    meter: MeterName,
    dimensions: Record<string, string>,
    intervalStart: number,
    seconds: number,
    perSecond: number,
  ): void {
    const probe = { resourceUid: subject.uid, meter, dimensions, intervalStart };
    const key = sampleKey(probe);
    const sample = this.open.get(key) ?? {
      ...probe,
      kind: subject.kind,
      project: subject.project,
      name: subject.name,
      seconds: 0,
      quantity: '0',
      final: false,
    };
    // A restart resumes an interval from its snapshot; it can never hold more than its length.
    const added = Math.min(seconds, INTERVAL_SECONDS - sample.seconds);
    if (added <= 0) return;
    sample.seconds += added;
    sample.quantity = (BigInt(sample.quantity) + BigInt(perSecond) * BigInt(added)).toString();
    this.open.set(key, sample);
  }
}
