-- Invoices and credit notes (docs/billing.md): issued once, never changed.

-- Numbers are gapless in the order of issue: the counter is taken in the issuing transaction, so
-- a closing that rolls back gives its number back.
CREATE TABLE invoice_counter (
  id    boolean PRIMARY KEY DEFAULT true CHECK (id),
  value bigint  NOT NULL
);
INSERT INTO invoice_counter VALUES (true, 0);

CREATE TABLE invoices (
  number      text        PRIMARY KEY,
  kind        text        NOT NULL CHECK (kind IN ('invoice', 'credit-note')),
  org         text        NOT NULL,
  month       text        NOT NULL,
  time_zone   text        NOT NULL,
  period_from timestamptz NOT NULL,
  period_to   timestamptz NOT NULL,
  currency    text        NOT NULL,
  total       bigint      NOT NULL,
  corrects    text        REFERENCES invoices (number),
  reason      text,
  issued_at   timestamptz NOT NULL DEFAULT now(),
  issued_by   text        NOT NULL,
  -- The whole document as exported (lines included): what JSON, CSV and PDF are made from.
  document    jsonb       NOT NULL
);
-- One invoice per org and month, however many control-plane replicas close it at once.
CREATE UNIQUE INDEX invoices_one_per_month ON invoices (org, month) WHERE kind = 'invoice';
CREATE INDEX invoices_org ON invoices (org, issued_at);

CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'invoices are immutable: issue a credit note instead';
END $$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
  FOR EACH ROW EXECUTE FUNCTION invoices_immutable();
