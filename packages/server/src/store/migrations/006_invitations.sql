-- Invitations to join an org. One is pending until the invited user accepts or declines it, an
-- owner or admin cancels it, or it expires; then it is deleted (the audit log keeps its story).
-- It names a user, who need not exist: inviting says nothing about which user names exist.
CREATE TABLE invitations (
  id         uuid        PRIMARY KEY,
  org        text        NOT NULL,
  user_name  text        NOT NULL,
  role       text        NOT NULL,
  -- NULL: the whole org; otherwise the role will apply inside these projects only.
  projects   text[],
  invited_by text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  -- Inviting someone again replaces their pending invitation.
  UNIQUE (org, user_name)
);
CREATE INDEX invitations_user ON invitations (user_name);
