import type { Resource } from '@kumo/api';
import type pg from 'pg';
import type { ResourceKey } from './resource-rows.js';

/**
 * What belongs to a target, for its agent: the Target itself, the Databases placed on it, the
 * Backups of those Databases (or taken there, by status.target), the Backups those Databases
 * are restored from, and their DatabaseUsers. An agent token reads only these and writes only their status and events.
 */
export class TargetScope {
  constructor(private readonly pool: pg.Pool) {}

  /** Keys of the resources of `kind` on the target (resync). */
  async keys(target: string, kind: string): Promise<ResourceKey[]> {
    if (kind === 'Target') return [{ kind, project: '', name: target }];
    if (kind === 'DatabaseUser') {
      const { rows } = await this.pool.query<ResourceKey>(
        `SELECT u.kind, u.project, u.name FROM resources u
         JOIN resources d ON d.kind = 'Database' AND d.project = u.project AND d.name = u.spec ->> 'database'
         WHERE u.kind = 'DatabaseUser' AND d.spec ->> 'target' = $1`,
        [target],
      );
      return rows;
    }
    const sql =
      kind === 'Backup'
        ? `SELECT b.kind, b.project, b.name FROM resources b
           LEFT JOIN resources d ON d.kind = 'Database' AND d.project = b.project AND d.name = b.spec ->> 'database'
           WHERE b.kind = 'Backup' AND COALESCE(b.status ->> 'target', d.spec ->> 'target') = $1`
        : `SELECT kind, project, name FROM resources WHERE kind = $2 AND spec ->> 'target' = $1`;
    const { rows } = await this.pool.query<ResourceKey>(sql, kind === 'Backup' ? [target] : [target, kind]);
    return rows;
  }

  /** Whether the resource is on the target (read: also a Backup one of its Databases restores from). */
  async holds(target: string, resource: Resource, purpose: 'read' | 'write'): Promise<boolean> {
    const spec = resource.spec as Record<string, unknown>;
    switch (resource.kind) {
      case 'Target':
        return resource.metadata.name === target;
      case 'Backup': {
        const project = resource.metadata.project ?? '';
        const taken = (resource.status as { target?: string }).target;
        if (taken !== undefined) {
          if (taken === target) return true;
        } else if (await this.databaseOn(target, project, String(spec.database))) return true;
        if (purpose === 'write') return false;
        const { rows } = await this.pool.query(
          `SELECT 1 FROM resources WHERE kind = 'Database' AND project = $1 AND spec ->> 'target' = $2
             AND (spec -> 'restoreFrom' ->> 'backup' = $3 OR spec -> 'restoreInPlace' ->> 'backup' = $3) LIMIT 1`,
          [project, target, resource.metadata.name],
        );
        return rows.length > 0;
      }
      case 'DatabaseUser':
        return this.databaseOn(target, resource.metadata.project ?? '', String(spec.database));
      default:
        return spec.target === target;
    }
  }

  private async databaseOn(target: string, project: string, name: string): Promise<boolean> {
    const { rows } = await this.pool.query(
      `SELECT 1 FROM resources WHERE kind = 'Database' AND project = $1 AND name = $2 AND spec ->> 'target' = $3`,
      [project, name, target],
    );
    return rows.length > 0;
  }
}
