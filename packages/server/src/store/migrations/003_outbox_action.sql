-- What kind of write a nudge is about (create, update, update-status, delete, …), so that a
-- reconciler need not wake for its own status writes.
ALTER TABLE outbox ADD COLUMN action text NOT NULL DEFAULT 'update';
