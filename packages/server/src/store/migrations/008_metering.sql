-- Metering and billing (docs/billing.md).

-- Every database there ever was: whose it is (projects never change org), on which target, and
-- when it lived. Rows are written by triggers in the same transaction that creates or removes the
-- resource's row, so "how long did it exist this month" needs nothing that could be compacted,
-- and a database no agent ever reported on still shows, with all its time missing.
CREATE TABLE metered_resources (
  uid        uuid        PRIMARY KEY,
  kind       text        NOT NULL,
  org        text        NOT NULL,
  project    text        NOT NULL,
  name       text        NOT NULL,
  target     text        NOT NULL,
  created_at timestamptz NOT NULL,
  deleted_at timestamptz
);
CREATE INDEX metered_resources_org ON metered_resources (org, created_at);

CREATE FUNCTION metered_resource_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metered_resources (uid, kind, org, project, name, target, created_at)
  SELECT NEW.uid, NEW.kind, p.spec->>'org', NEW.project, NEW.name, NEW.spec->>'target', NEW.created_at
    FROM resources p
   WHERE p.kind = 'Project' AND p.project = '' AND p.name = NEW.project
  ON CONFLICT (uid) DO NOTHING;
  RETURN NEW;
END $$;
CREATE TRIGGER metered_resource_created AFTER INSERT ON resources
  FOR EACH ROW WHEN (NEW.kind = 'Database') EXECUTE FUNCTION metered_resource_created();

-- The databases there are already when this migration runs.
INSERT INTO metered_resources (uid, kind, org, project, name, target, created_at)
SELECT r.uid, r.kind, p.spec->>'org', r.project, r.name, r.spec->>'target', r.created_at
  FROM resources r
  JOIN resources p ON p.kind = 'Project' AND p.project = '' AND p.name = r.project
 WHERE r.kind = 'Database';

CREATE FUNCTION metered_resource_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE metered_resources SET deleted_at = now() WHERE uid = OLD.uid AND deleted_at IS NULL;
  RETURN OLD;
END $$;
CREATE TRIGGER metered_resource_deleted AFTER DELETE ON resources
  FOR EACH ROW EXECUTE FUNCTION metered_resource_deleted();

-- The usage ledger: one row per (target, resource, meter, dimensions, quarter-hour). While its
-- quarter-hour runs, a row grows with each report (the largest wins: a replay of an older one
-- changes nothing); once the agent reports it final it never changes again. A sample reported
-- again — a retry, a replay, an agent resending after a crash — hits the unique key and changes
-- nothing: usage is counted once.
CREATE TABLE usage_ledger (
  id             bigserial     PRIMARY KEY,
  target         text          NOT NULL,
  resource_uid   uuid          NOT NULL REFERENCES metered_resources (uid),
  org            text          NOT NULL,
  project        text          NOT NULL,
  meter          text          NOT NULL,
  dimensions     jsonb         NOT NULL,
  dimension_key  text          NOT NULL,
  interval_start timestamptz   NOT NULL,
  seconds        integer       NOT NULL CHECK (seconds BETWEEN 1 AND 900),
  quantity       numeric(38,0) NOT NULL CHECK (quantity >= 0),
  final          boolean       NOT NULL,
  reported_at    timestamptz   NOT NULL DEFAULT now(),
  UNIQUE (target, resource_uid, meter, dimension_key, interval_start)
);
CREATE INDEX usage_ledger_org ON usage_ledger (org, interval_start);
CREATE INDEX usage_ledger_project ON usage_ledger (project, interval_start);

-- The price book: append-only. A price holds from effective_from until the next one of the same
-- meter and dimension value takes effect; a change never reaches back before it was made.
-- unit_price is in millionths of the currency's minor unit per price unit (hour, GB-month), so
-- that fractions of a cent per hour are exact integers.
CREATE TABLE prices (
  id             bigserial   PRIMARY KEY,
  meter          text        NOT NULL,
  plan           text        NOT NULL DEFAULT '',  -- '' for every plan (or a meter without plans)
  currency       text        NOT NULL,
  unit_price     bigint      NOT NULL CHECK (unit_price >= 0),
  effective_from timestamptz NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     text        NOT NULL,
  UNIQUE (meter, plan, effective_from)
);
