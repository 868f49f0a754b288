import { INTERVAL_SECONDS, type MeterName, dimensionKey, intervalOf } from './meters.js';

/** What a usage sample is about: a resource on the agent's target. */
export interface MeteredSubject {
  uid: string;
  kind: string;
  project: string;
  name: string;
}

/** What the agent saw of a database at one moment. */
export interface MeteredState {
  running: boolean;
  engine: string;
  plan: string;
  storageGB: number;
  /** As last measured; absent when it could not be measured (then nothing is counted for it). */
  usedBytes?: number;
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
  state: MeteredState;
  /** Epoch second from which `state` holds. */
  since: number;
}

function sampleKey(s: Pick<UsageSample, 'resourceUid' | 'meter' | 'dimensions' | 'intervalStart'>): string {
  return `${s.resourceUid}|${s.meter}|${dimensionKey(s.dimensions)}|${s.intervalStart}`;
}

/**
 * The agent's meter: turns what it observes of each database, moment by moment, into quarter-hour
 * samples. A state holds from one observation to the next (the agent observes every database at
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

  /** The state of subject as seen at epoch second t. */
  observe(subject: MeteredSubject, state: MeteredState, t: number): void {
    const seen = this.watched.get(subject.uid);
    if (seen) this.accrue(seen, t);
    this.watched.set(subject.uid, {
      subject,
      state: { ...state },
      since: seen ? Math.max(seen.since, t) : t,
    });
  }

  /** The resource's instance is not there at epoch second t (not made yet, or lost): it accrues nothing until seen again. */
  absent(uid: string, t: number): void {
    const seen = this.watched.get(uid);
    if (seen) this.accrue(seen, t);
    this.watched.delete(uid);
  }

  /** The plan last seen in effect for uid, if it is watched. */
  planOf(uid: string): string | undefined {
    return this.watched.get(uid)?.state.plan;
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

  /** Adds [seen.since, t) of seen's state to its intervals, and moves seen.since to t. */
  private accrue(seen: Watched, t: number): void {
    for (let from = seen.since; from < t;) {
      const start = intervalOf(from);
      const to = Math.min(t, start + INTERVAL_SECONDS);
      const seconds = to - from;
      const { state, subject } = seen;
      const engine = { engine: state.engine };
      if (state.running)
        this.add(subject, 'database.runtime', { ...engine, plan: state.plan }, start, seconds, 1);
      this.add(subject, 'database.storage', engine, start, seconds, state.storageGB);
      if (state.usedBytes !== undefined)
        this.add(subject, 'database.storage-used', engine, start, seconds, state.usedBytes);
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
