-- Backups are metered from the moment their object is stored (docs/billing.md): a Backup joins
-- metered_resources when its status first records an object, on the target whose agent took it
-- (and reports its bytes, and deletes it); its deletion ends it like any resource's.

CREATE FUNCTION metered_backup_stored() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metered_resources (uid, kind, org, project, name, target, created_at)
  SELECT NEW.uid, NEW.kind, p.spec->>'org', NEW.project, NEW.name, NEW.status->>'target',
         coalesce((NEW.status->>'completedAt')::timestamptz, now())
    FROM resources p
   WHERE p.kind = 'Project' AND p.project = '' AND p.name = NEW.project
  ON CONFLICT (uid) DO NOTHING;
  RETURN NEW;
END $$;
CREATE TRIGGER metered_backup_stored AFTER UPDATE ON resources
  FOR EACH ROW WHEN (NEW.kind = 'Backup' AND NEW.status ? 'object' AND NOT OLD.status ? 'object'
                     AND NEW.status ? 'target')
  EXECUTE FUNCTION metered_backup_stored();

-- The backups there are already when this migration runs.
INSERT INTO metered_resources (uid, kind, org, project, name, target, created_at)
SELECT r.uid, r.kind, p.spec->>'org', r.project, r.name, r.status->>'target',
       coalesce((r.status->>'completedAt')::timestamptz, r.updated_at)
  FROM resources r
  JOIN resources p ON p.kind = 'Project' AND p.project = '' AND p.name = r.project
 WHERE r.kind = 'Backup' AND r.status ? 'object' AND r.status ? 'target'
ON CONFLICT (uid) DO NOTHING;
