/**
 * An invoice or a credit note as it is stored and exported (JSON, CSV, PDF): immutable once
 * issued. Amounts are integers in the currency's minor unit; a credit note's are negative.
 */
export interface InvoiceDocument {
  /** Gapless across the platform, in the order of issue: "2026-000042". */
  number: string;
  kind: 'invoice' | 'credit-note';
  org: string;
  /** The billing month in the org's time zone, and the instants it spans. */
  period: { month: string; timeZone: string; from: string; to: string };
  issuedAt: string;
  currency: string;
  /** Sum of the lines' amounts (minor units). */
  total: number;
  /** For a credit note: the number of the invoice it corrects, and why. */
  corrects?: string;
  reason?: string;
  lines: InvoiceLine[];
}

export interface InvoiceLine {
  /** 1, 2, 3… in the order printed. */
  number: number;
  description: string;
  project: string;
  resource: string;
  resourceUid: string;
  meter: string;
  dimensions: Record<string, string>;
  from: string;
  to: string;
  /** In the meter's unit-seconds, and that unit. */
  quantity: string;
  unit: string;
  /** Major units per price unit ("0.0137" per "hour"); absent for usage no price covered. */
  unitPrice?: string;
  priceUnit: string;
  /** Minor units. */
  amount: number;
}
