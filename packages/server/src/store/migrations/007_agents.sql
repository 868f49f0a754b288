-- One agent serves a target at a time: it holds the target's lease while it renews it. Each new
-- holder (and each restart of one) takes the next fence; status writes carry the fence they were
-- made under and are refused once it is not the current one (docs/distributed.md).
CREATE TABLE target_leases (
  target         text        PRIMARY KEY,
  holder         text        NOT NULL,
  fence          bigint      NOT NULL,
  acquired_at    timestamptz NOT NULL,
  renewed_at     timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  -- Where the control plane reaches the agent for what only its host can answer (logs, local
  -- backup files), and the secret it presents there, sealed with the master key.
  gateway_url    text,
  gateway_secret bytea
);

-- Agent tokens act for one target only.
ALTER TABLE tokens ADD COLUMN target text;
