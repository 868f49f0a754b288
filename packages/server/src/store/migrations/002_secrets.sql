-- Secrets of resources (database passwords), encrypted with the platform's master key (AES-256-GCM).
-- Removed with their resource.
CREATE TABLE secrets (
  uid        uuid        NOT NULL REFERENCES resources (uid) ON DELETE CASCADE,
  name       text        NOT NULL,
  version    integer     NOT NULL,
  ciphertext bytea       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (uid, name)
);
