import { type Condition, type EngineInfo, type FieldError, type Resource, isConditionTrue } from '@kumo/api';
import { EngineCatalog, plansOf, type DatabaseSpecLike } from '../engines/engine-catalog.js';
import { ConflictError, ValidationError } from '../errors.js';
import type { Queryable } from '../store/sql.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { LeaseInfo, LeaseStore } from '../store/target-leases.js';

const MIB = 1024 * 1024;
/** The advisory lock placements commit under (any number; the same for every replica). */
const PLACEMENT_LOCK = 7_100_914_001;

/** The target placement chose filled up before the create committed: place again. */
export class PlacementRaceError extends ConflictError {}

interface TargetStatus {
  engines?: Array<{ engine: string; versions: string[] }>;
  capacity?: { memoryBytes: number; freePorts: number };
  conditions?: Condition[];
}

/** A target as placement sees it. */
interface Candidate {
  target: Resource;
  status: TargetStatus;
  lease: LeaseInfo | undefined;
}

/**
 * Where databases go. A Database that names no target is placed at admission on a Ready (its
 * agent holds an unexpired lease), schedulable (not cordoned) target whose labels match
 * spec.targetSelector, that runs the engine and version, and whose memory fits the plan next to
 * what the plans already there claim. Policy: spread — the target with the most memory left after
 * placing it, then the one with fewest databases, then by name. The choice is written into
 * spec.target, which never changes afterwards: a database never moves silently.
 */
export class Placement {
  /** Specs whose target placement chose (not the caller): their room is checked again at commit. */
  private readonly placed = new WeakSet<object>();

  constructor(
    private readonly store: ResourceStore,
    private readonly leases: LeaseStore,
  ) {}

  /**
   * Inside the create's transaction: placements commit one at a time (an advisory lock), and a
   * target that filled up since it was chosen — another placement committed there meanwhile —
   * refuses with PlacementRaceError, so the create places again. Never overcommits a target.
   */
  async admit(client: Queryable, spec: Record<string, unknown>): Promise<void> {
    if (!this.placed.has(spec)) return;
    await client.query('SELECT pg_advisory_xact_lock($1)', [PLACEMENT_LOCK]);
    const db = spec as unknown as DatabaseSpecLike & { target: string };
    const { rows } = await client.query<{ status: TargetStatus }>(
      "SELECT status FROM resources WHERE kind = 'Target' AND project = '' AND name = $1",
      [db.target],
    );
    const memoryBytes = rows[0]?.status.capacity?.memoryBytes ?? 0;
    const committed = (await committedMemory(client)).get(db.target)?.bytes ?? 0;
    if (committed + planMemory(db) > memoryBytes)
      throw new PlacementRaceError(`Target ${db.target} filled up while this database was being placed.`);
  }

  /** The spec with its target: the one it names (checked), or the one placement picks. */
  async place(spec: Record<string, unknown>): Promise<Record<string, unknown>> {
    const db = spec as unknown as DatabaseSpecLike & {
      target?: string;
      targetSelector?: Record<string, string>;
    };
    const candidates = await this.candidates();
    if (db.target !== undefined) {
      const named = candidates.find((c) => c.target.metadata.name === db.target);
      if (named && (named.target.spec as { unschedulable?: boolean }).unschedulable)
        throw new ValidationError(
          `spec.target: target ${db.target} is cordoned; no new databases go there.`,
          [
            {
              field: 'spec.target',
              message: `target ${db.target} is cordoned (kumo target uncordon ${db.target})`,
            },
          ],
        );
      // A target whose agent has reported its engines is held to them; one that has not yet, is not.
      const errors = named?.status.engines ? EngineCatalog.offering(named.status.engines).validate(db) : [];
      if (errors.length > 0) throw invalid(`on target ${db.target}`, errors);
      return spec;
    }
    const committed = await committedMemory(this.store.queryable);
    const planBytes = planMemory(db);
    const reasons: string[] = [];
    const fitting: Array<{ name: string; left: number; databases: number }> = [];
    for (const c of candidates) {
      const name = c.target.metadata.name;
      const why = this.unfit(c, db, planBytes, committed.get(name)?.bytes ?? 0);
      if (why) reasons.push(`${name}: ${why}`);
      else
        fitting.push({
          name,
          left: c.status.capacity!.memoryBytes - (committed.get(name)?.bytes ?? 0) - planBytes,
          databases: committed.get(name)?.count ?? 0,
        });
    }
    fitting.sort((a, b) => b.left - a.left || a.databases - b.databases || a.name.localeCompare(b.name));
    const chosen = fitting[0];
    if (!chosen) {
      // No Ready target runs the engine and version asked for: say so on those fields, with what is on offer.
      const offered = candidates.filter((c) => ready(c)).flatMap((c) => c.status.engines ?? []);
      const engineErrors = offered.length > 0 ? EngineCatalog.offering(offered).validate(db) : [];
      if (engineErrors.length > 0) throw invalid('on the Ready targets', engineErrors);
      const field = db.targetSelector ? 'spec.targetSelector' : 'spec.target';
      const detail = reasons.length > 0 ? reasons.join('; ') : 'there are no targets';
      throw new ValidationError(`No target can take this database now (${detail}).`, [
        { field, message: `no Ready, schedulable target fits: ${detail}` },
      ]);
    }
    const placed = { ...spec, target: chosen.name };
    this.placed.add(placed);
    return placed;
  }

  /** What each Ready target offers (GET /v1/engines), or one target's. */
  async offered(target?: string): Promise<EngineInfo[]> {
    const engines = (await this.candidates())
      .filter((c) => (target === undefined ? ready(c) : c.target.metadata.name === target))
      .flatMap((c) => c.status.engines ?? []);
    return EngineCatalog.offering(engines).list();
  }

  private unfit(
    c: Candidate,
    db: DatabaseSpecLike & { targetSelector?: Record<string, string> },
    planBytes: number,
    committed: number,
  ): string | undefined {
    const labels = c.target.metadata.labels;
    for (const [key, value] of Object.entries(db.targetSelector ?? {}))
      if (labels[key] !== value) return `its labels do not match ${key}=${value}`;
    if (c.target.metadata.deletionTimestamp) return 'it is being deleted';
    if ((c.target.spec as { unschedulable?: boolean }).unschedulable) return 'cordoned';
    if (!ready(c)) return 'its agent is not connected';
    const errors = EngineCatalog.offering(c.status.engines ?? []).validate(db);
    if (errors.length > 0) return errors.map((e) => e.message).join(', ');
    const capacity = c.status.capacity;
    if (!capacity) return 'its agent has not reported its capacity';
    if (capacity.freePorts < 1) return 'no free ports';
    if (committed + planBytes > capacity.memoryBytes)
      return `not enough memory (${Math.floor((capacity.memoryBytes - committed) / MIB)} MB left, the plan needs ${planBytes / MIB} MB)`;
    return undefined;
  }

  private async candidates(): Promise<Candidate[]> {
    const leases = new Map((await this.leases.all()).map((l) => [l.target, l]));
    const targets = await this.store.list('Target', { limit: 1000 });
    return targets.items.map((target) => ({
      target,
      status: target.status as TargetStatus,
      lease: leases.get(target.metadata.name),
    }));
  }
}

/** Memory the plans of the running (not stopped) databases on each target claim. */
async function committedMemory(client: Queryable): Promise<Map<string, { bytes: number; count: number }>> {
  const { rows } = await client.query<{ spec: DatabaseSpecLike & { target?: string; stopped?: boolean } }>(
    "SELECT spec FROM resources WHERE kind = 'Database' AND spec ? 'target'",
  );
  const committed = new Map<string, { bytes: number; count: number }>();
  for (const { spec } of rows) {
    const entry = committed.get(spec.target!) ?? { bytes: 0, count: 0 };
    entry.count++;
    if (!spec.stopped) entry.bytes += planMemory(spec);
    committed.set(spec.target!, entry);
  }
  return committed;
}

function planMemory(spec: DatabaseSpecLike): number {
  return (plansOf(spec.engine).find((p) => p.name === spec.plan)?.memoryMB ?? 0) * MIB;
}

function ready(c: Candidate): boolean {
  return c.lease !== undefined && !c.lease.expired && isConditionTrue(c.status.conditions, 'Ready');
}

function invalid(where: string, errors: FieldError[]): ValidationError {
  return new ValidationError(
    `The Database spec is invalid ${where}: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}.`,
    errors,
  );
}
