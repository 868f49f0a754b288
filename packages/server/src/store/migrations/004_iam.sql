-- Users, org memberships, scoped tokens, quotas, and the org of each audit entry.

CREATE TABLE users (
  name         text        PRIMARY KEY,
  display_name text,
  email        text,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
  org        text        NOT NULL,
  user_name  text        NOT NULL REFERENCES users (name) ON DELETE CASCADE,
  role       text        NOT NULL,
  -- NULL: the whole org; otherwise the role applies inside these projects only.
  projects   text[],
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org, user_name)
);
CREATE INDEX memberships_user ON memberships (user_name);

-- A token acts as its principal, capped at its role; org and projects narrow it further.
ALTER TABLE tokens ADD COLUMN org text, ADD COLUMN projects text[], ADD COLUMN created_by text;
CREATE INDEX tokens_principal ON tokens (principal);
CREATE INDEX tokens_org ON tokens (org);

-- NULL limit: no limit at this level (a project is still bounded by its org).
CREATE TABLE quotas (
  scope      text    NOT NULL CHECK (scope IN ('org', 'project')),
  name       text    NOT NULL,
  databases  integer,
  storage_gb integer,
  backups    integer,
  PRIMARY KEY (scope, name)
);

ALTER TABLE audit_log ADD COLUMN org text;
CREATE INDEX audit_log_org_at ON audit_log (org, at);
