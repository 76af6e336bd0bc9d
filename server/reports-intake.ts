import type http from 'node:http';
import type { z } from 'zod';
import { describeError } from '../app/base/errors.js';
import { ErrorReport, type ReportAck } from '../app/common/reports.js';
import { readBounded, refuseUnread, replyJson } from './http-replies.js';
import type { OriginPolicy } from './origins.js';
import { PerKeyRateLimit } from './rate-limit.js';
import { type ReportStore, ReportStoreUnavailable } from './report-store.js';

/** The largest request body accepted (a report is at most REPORT_MAX_BYTES; this leaves room). */
export const REPORT_BODY_MAX_BYTES = 64 * 1024;

/** An agent reports an error when one happens, not in a loop: a burst of 60, then one a second. */
export const DEFAULT_REPORTS_PER_MINUTE = 60;

export interface ReportsIntakeOptions {
  /** Where accepted reports go. The intake owns it: close() closes it. */
  readonly store: ReportStore;
  readonly log: (line: string) => void;
  readonly now: () => Date;
  /** Reports accepted per minute from one agent; more are answered 429 with Retry-After. */
  readonly perAgentPerMinute: number;
  /** Web pages whose requests are taken (agents send no Origin). */
  readonly origins: OriginPolicy;
}

/**
 * `POST /reports`: validates an error report and hands it to the store, which keeps it once per
 * report id (an agent re-sends what it could not confirm, so duplicates are normal and answered as
 * such). The agent is acknowledged only once the store has the report: it deletes its copy then.
 * What strangers can cost is bounded: web pages are refused (OriginPolicy), each agent gets
 * perAgentPerMinute, and the store has bounds of its own. A store out of reach (Redis down) is
 * answered 503 with Retry-After: the agent keeps the report and sends it again later.
 */
export class ReportsIntake {
  readonly #options: ReportsIntakeOptions;
  readonly #rate: PerKeyRateLimit;

  constructor(options: ReportsIntakeOptions) {
    this.#options = options;
    this.#rate = new PerKeyRateLimit({ perMinute: options.perAgentPerMinute, now: options.now });
  }

  /** How many distinct reports the store holds. */
  get stored(): number {
    return this.#options.store.stored;
  }

  /** How many reports were dropped since start to keep the store within its bounds. */
  get dropped(): number {
    return this.#options.store.dropped;
  }

  /**
   * `agentId`: the agent the request is authenticated as, when it is: a report naming another agent
   * is refused (403), and the rate limit is keyed by it. Undefined: the report's agent_id is trusted.
   */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, agentId?: string): Promise<void> {
    if (!this.#options.origins.allows(req.headers.origin)) {
      refuseUnread(req, res, 403, 'reports from web pages are refused unless their origin is allowed (outpost-server --allow-origin)');
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      replyJson(res, 405, { error: 'use POST' });
      return;
    }
    const mediaType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (mediaType !== 'application/json') {
      refuseUnread(req, res, 415, `Content-Type must be application/json (got ${mediaType ?? 'none'})`);
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > REPORT_BODY_MAX_BYTES) {
      refuseUnread(req, res, 413, `body larger than ${REPORT_BODY_MAX_BYTES} bytes`);
      return;
    }
    const body = await readBounded(req, REPORT_BODY_MAX_BYTES);
    if (body === 'too large') {
      refuseUnread(req, res, 413, `body larger than ${REPORT_BODY_MAX_BYTES} bytes`);
      return;
    }
    if (body === 'aborted') return;
    const parsed = parseReport(body);
    if (!parsed.ok) {
      replyJson(res, 400, { error: parsed.problem });
      return;
    }
    // Every valid report counts, duplicates and refusals too: the limit is on what an agent asks of the server.
    const agent = agentId ?? parsed.report.agent_id;
    const admission = this.#rate.take(agent);
    if (!admission.admitted) {
      const perMinute = this.#options.perAgentPerMinute;
      if (admission.firstRefusal) this.#options.log(`reports: agent ${agent} sends more than ${perMinute} report(s) a minute: answering 429 until it slows down`);
      res.setHeader('Retry-After', String(admission.retryAfterS));
      replyJson(res, 429, { error: `more than ${perMinute} reports a minute from agent ${agent}: retry after ${admission.retryAfterS} s` });
      return;
    }
    if (agentId !== undefined && parsed.report.agent_id !== agentId) {
      replyJson(res, 403, { error: `the report names agent ${parsed.report.agent_id}, but the request is authenticated as agent ${agentId}: an agent sends its own reports only` });
      return;
    }
    let outcome: 'stored' | 'duplicate';
    try {
      outcome = await this.#options.store.add(parsed.report);
    } catch (error) {
      if (!(error instanceof ReportStoreUnavailable)) throw error;
      res.setHeader('Retry-After', String(error.retryAfterS));
      replyJson(res, 503, { error: `${error.message}: the report is not stored, send it again after ${error.retryAfterS} s` });
      return;
    }
    replyJson(res, 202, { accepted: true, duplicate: outcome === 'duplicate' } satisfies ReportAck);
  }

  /** Closes the store (which waits for its pending writes). */
  close(): Promise<void> {
    return this.#options.store.close();
  }
}

type Parsed = { ok: true; report: ErrorReport } | { ok: false; problem: string };

function parseReport(body: Buffer): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (error) {
    return { ok: false, problem: `malformed JSON: ${describeError(error)}` };
  }
  const result = ErrorReport.safeParse(value);
  if (!result.success) return { ok: false, problem: `not a valid error report: ${describeIssues(result.error.issues)}` };
  return { ok: true, report: result.data };
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const shown = issues.slice(0, 5).map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(body)'}: ${issue.message}`);
  return shown.join('; ') + (issues.length > shown.length ? `; and ${issues.length - shown.length} more` : '');
}

