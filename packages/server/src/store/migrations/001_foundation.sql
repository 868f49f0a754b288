-- The foundation: resources, their change log (watch), the outbox (bus), events, tokens, audit.

-- One row. Every write takes the next resourceVersion from here while holding the row lock until
-- commit, so resourceVersions become visible in increasing order: a reader that has seen N has seen
-- every committed write below N. (Sequences do not give that: they commit out of order.)
CREATE TABLE resource_version (
  id    boolean PRIMARY KEY DEFAULT true CHECK (id),
  value bigint  NOT NULL
);
INSERT INTO resource_version VALUES (true, 0);

CREATE TABLE resources (
  kind               text        NOT NULL,
  project            text        NOT NULL DEFAULT '',  -- '' for platform-scoped kinds
  name               text        NOT NULL,
  uid                uuid        NOT NULL UNIQUE,
  generation         bigint      NOT NULL,
  resource_version   bigint      NOT NULL,
  labels             jsonb       NOT NULL DEFAULT '{}',
  finalizers         text[]      NOT NULL DEFAULT '{}',
  spec               jsonb       NOT NULL,
  status             jsonb       NOT NULL DEFAULT '{}',
  created_at         timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL,
  deletion_timestamp timestamptz,
  PRIMARY KEY (kind, project, name)
);
CREATE INDEX resources_labels ON resources USING gin (labels jsonb_path_ops);
CREATE INDEX resources_project ON resources (project, kind);

-- Every write, in resourceVersion order, with the object as written: what a watch replays.
CREATE TABLE changes (
  resource_version bigint      PRIMARY KEY,
  kind             text        NOT NULL,
  project          text        NOT NULL,
  name             text        NOT NULL,
  type             text        NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')),
  object           jsonb       NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_kind ON changes (kind, resource_version);

-- Watches older than this resourceVersion answer 410 Gone: the history was compacted.
CREATE TABLE changes_compacted (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  through bigint  NOT NULL
);
INSERT INTO changes_compacted VALUES (true, 0);

-- Nudges for the bus, written in the same transaction as the resource; the relay publishes and deletes.
CREATE TABLE outbox (
  id               bigserial   PRIMARY KEY,
  kind             text        NOT NULL,
  project          text        NOT NULL,
  name             text        NOT NULL,
  generation       bigint      NOT NULL,
  resource_version bigint      NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
  id               bigserial   PRIMARY KEY,
  uid              uuid        NOT NULL,
  kind             text        NOT NULL,
  project          text        NOT NULL,
  name             text        NOT NULL,
  type             text        NOT NULL CHECK (type IN ('Normal', 'Warning')),
  reason           text        NOT NULL,
  message          text        NOT NULL,
  count            integer     NOT NULL DEFAULT 1,
  first_timestamp  timestamptz NOT NULL,
  last_timestamp   timestamptz NOT NULL,
  UNIQUE (uid, type, reason, message)
);
CREATE INDEX events_resource ON events (kind, project, name, last_timestamp);

CREATE TABLE idempotency_keys (
  principal    text        NOT NULL,
  key          text        NOT NULL,
  request_hash text        NOT NULL,
  status       integer     NOT NULL,
  body         jsonb       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, key)
);

CREATE TABLE tokens (
  id           uuid        PRIMARY KEY,
  name         text        NOT NULL,
  prefix       text        NOT NULL UNIQUE,
  secret_hash  text        NOT NULL,
  principal    text        NOT NULL,
  role         text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz
);

CREATE TABLE audit_log (
  id          bigserial   PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text        NOT NULL,
  token_id    uuid,
  action      text        NOT NULL,
  kind        text        NOT NULL,
  project     text        NOT NULL,
  name        text        NOT NULL,
  outcome     text        NOT NULL,
  request_id  text,
  source      text
);
CREATE INDEX audit_log_at ON audit_log (at);
