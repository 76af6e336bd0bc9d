import type { ErrorReport } from '../app/common/reports.js';

export const DEFAULT_MAX_REPORTS = 10_000;

/** A report as a store holds it: when the server received it, and the report as the agent sent it. */
export interface StoredReport {
  readonly receivedAt: Date;
  readonly report: ErrorReport;
}

/**
 * Where `POST /reports` puts what it accepts: the node's own JSON Lines file (file-reports.ts), or
 * a Redis stream shared by every node (redis-reports.ts). Either stores a report once per id.
 */
export interface ReportStore {
  /**
   * Stores the report unless one with its id is stored already: 'duplicate' then. Resolves only once
   * the report is durable as far as the store goes, since the agent deletes its copy when told.
   * Rejects with ReportStoreUnavailable when the store cannot be reached now (the agent retries).
   */
  add(report: ErrorReport): Promise<'stored' | 'duplicate'>;
  /** How many reports the store holds (for /health). */
  readonly stored: number;
  /** How many reports this node dropped since start to keep the store within its bounds (for /health). */
  readonly dropped: number;
  close(): Promise<void>;
}

/** The store is out of reach for now (Redis down): answered 503 with Retry-After, the agent keeps the report. */
export class ReportStoreUnavailable extends Error {
  readonly retryAfterS: number;

  constructor(message: string, retryAfterS: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ReportStoreUnavailable';
    this.retryAfterS = retryAfterS;
  }
}
