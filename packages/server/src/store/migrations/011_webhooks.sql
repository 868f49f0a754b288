-- Webhooks (docs/webhooks.md): the deliveries of changes and events to each Webhook resource, fanned
-- out from the change log and the event log, claimed by any replica, retried with backoff.

-- How far the fan-out has read the change log. It starts at the present: webhooks are sent what
-- happens after they exist. One row, locked by the one fan-out pass that runs at a time.
CREATE TABLE webhook_cursor (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  through bigint  NOT NULL
);
INSERT INTO webhook_cursor VALUES (true, (SELECT value FROM resource_version));

-- Every recording of an event (a new one, or a repeat that raised its count), in the order they were
-- written: what `kumo events --watch` streams and what webhooks are sent. Kept for 24 hours.
CREATE TABLE event_log (
  id              bigserial   PRIMARY KEY,
  uid             uuid        NOT NULL,
  kind            text        NOT NULL,
  project         text        NOT NULL,
  name            text        NOT NULL,
  type            text        NOT NULL,
  reason          text        NOT NULL,
  message         text        NOT NULL,
  count           integer     NOT NULL,
  first_timestamp timestamptz NOT NULL,
  last_timestamp  timestamptz NOT NULL,
  fanned_out      boolean     NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_log_project ON event_log (project, id);
CREATE INDEX event_log_unsent ON event_log (id) WHERE NOT fanned_out;

CREATE FUNCTION event_logged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_log (uid, kind, project, name, type, reason, message, count, first_timestamp, last_timestamp)
  -- A Project's own events belong to it (events of platform-scoped kinds are stored under project '').
  VALUES (NEW.uid, NEW.kind, CASE WHEN NEW.kind = 'Project' AND NEW.project = '' THEN NEW.name ELSE NEW.project END, NEW.name, NEW.type, NEW.reason, NEW.message, NEW.count,
          NEW.first_timestamp, NEW.last_timestamp);
  PERFORM pg_notify('kumo_webhooks', '');
  RETURN NEW;
END $$;
CREATE TRIGGER event_logged AFTER INSERT OR UPDATE ON events
  FOR EACH ROW EXECUTE FUNCTION event_logged();

-- One row per (webhook, change or event). Delivered in id order per (webhook, resource): a later
-- one waits while an earlier one of the same resource is Pending. Removed with the webhook.
CREATE TABLE webhook_deliveries (
  id               bigserial   PRIMARY KEY,
  webhook_uid      uuid        NOT NULL REFERENCES resources (uid) ON DELETE CASCADE,
  type             text        NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED', 'Event')),
  kind             text        NOT NULL,
  project          text        NOT NULL,
  name             text        NOT NULL,
  payload          jsonb       NOT NULL,
  state            text        NOT NULL DEFAULT 'Pending' CHECK (state IN ('Pending', 'Succeeded', 'Failed')),
  attempts         integer     NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  -- While a replica sends it: no other takes it until then (a replica that died mid-send loses it then).
  claimed_until    timestamptz,
  give_up_at       timestamptz NOT NULL,
  last_attempt_at  timestamptz,
  last_status      integer,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz
);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_uid, id);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE state = 'Pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_uid, kind, project, name, id)
  WHERE state = 'Pending';
