-- Kumo's own entries (actors system:…: status updates, heartbeats) are pruned after some days;
-- people's are kept. This index finds the old system entries without reading the people's.
CREATE INDEX audit_log_system_at ON audit_log (at) WHERE actor LIKE 'system:%';
