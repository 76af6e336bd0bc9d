import { type ErrorReport, REPORT_MAX_BYTES, ReportAck } from '../../common/reports.js';
import { describeError, ErrorCode } from '../../base/errors.js';
import { tryParseJson } from '../../base/jsonl.js';
import type { BackendCredentials } from './backend/agent-credentials.js';
import { type BackendAnswer, BackendHttp, type BackendHttpOptions, BackendUnreachable, excerpt, reasonOf } from './backend/backend-http.js';


/** What the backend made of one report. A retryable failure is not a result: `send` throws it. */
export type SendResult = { readonly outcome: 'accepted' | 'duplicate' } | { readonly outcome: 'refused'; readonly reason: string };

export interface ReportSender {
  /**
   * Delivers one report. Resolves with accepted/duplicate (stored, now or before) or refused (the
   * backend will never take this report: drop it); throws a ReportSendError when it is worth trying
   * again later (connection refused, timeout, HTTP 5xx, a garbled acknowledgement, `signal` aborted).
   */
  send(report: ErrorReport, signal?: AbortSignal): Promise<SendResult>;
}

/** A delivery that failed for now; the message says what happened, e.g. "connection refused". */
export class ReportSendError extends Error {
  readonly code = ErrorCode.REPORT_SEND_FAILED;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ReportSendError';
    this.details = options.details ?? {};
  }
}

export interface HttpReportSenderOptions extends BackendHttpOptions {
  /** The agent's token at a backend that authenticates agents (agent-credentials.ts); omitted: none sent. */
  readonly credentials?: BackendCredentials;
}

const REPORTS_PATH = '/reports';

/** `POST <baseUrl>/reports` (backend-http.ts says how it goes through proxies and whom it trusts). */
export class HttpReportSender implements ReportSender {
  readonly #http: BackendHttp;
  /** The URL without credentials or query, for messages and logs. */
  readonly #where: string;
  readonly #credentials: BackendCredentials | undefined;

  constructor(options: HttpReportSenderOptions) {
    this.#http = new BackendHttp(options);
    this.#where = this.#http.endpoint(REPORTS_PATH).where;
    this.#credentials = options.credentials;
  }

  get url(): string {
    return this.#where;
  }

  async send(report: ErrorReport, signal?: AbortSignal): Promise<SendResult> {
    const body = JSON.stringify(report);
    const bytes = Buffer.byteLength(body);
    // The backend answers 413 to this; say so without the round trip.
    if (bytes > REPORT_MAX_BYTES) return { outcome: 'refused', reason: `the report is ${bytes} bytes, more than ${REPORT_MAX_BYTES}` };
    const failed = (what: string, details: Record<string, unknown> = {}, cause?: unknown) =>
      new ReportSendError(`Report ${report.id} not delivered to ${this.#where}: ${what}.`, { cause, details: { url: this.#where, ...details } });
    let authorization: string | undefined;
    try {
      authorization = await this.#credentials?.authorization();
    } catch (error) {
      // Kept for later, even when revoked: the buffer is bounded, and an operator may undo a revocation.
      throw failed(describeError(error), {}, error);
    }
    let answer: BackendAnswer;
    try {
      answer = await this.#http.post(REPORTS_PATH, body, { headers: authorization ? { Authorization: authorization } : {}, signal, maxBodyLength: REPORT_MAX_BYTES });
    } catch (error) {
      throw failed(error instanceof BackendUnreachable ? error.message : String(error), {}, error);
    }
    const { status } = answer;
    // Not this report's fault: the agent's credentials. Tried again once they are mended (a new enrollment).
    if (status === 401 || status === 403) {
      this.#credentials?.refused(status, answer.text);
      if (status === 401 || authorization) throw failed(`HTTP ${status}: ${reasonOf(answer.text) || 'no reason given'}`, { status });
    }
    return judge(answer, failed);
  }
}

function judge(answer: BackendAnswer, failed: (what: string, details: Record<string, unknown>) => ReportSendError): SendResult {
  const { status, text } = answer;
  if (status === 200 || status === 202) {
    const ack = ReportAck.safeParse(tryParseJson(text));
    if (!ack.success) throw failed(`HTTP ${status} with an invalid acknowledgement (${excerpt(text) || 'empty body'})`, { status });
    return { outcome: ack.data.duplicate ? 'duplicate' : 'accepted' };
  }
  // 408 and 429 are 4xx but say "not now", not "never".
  if (status === 408 || status === 429) throw failed(`HTTP ${status}${answer.retryAfter ? ` (retry after ${answer.retryAfter})` : ''}`, { status });
  if (status >= 400 && status < 500) return { outcome: 'refused', reason: `HTTP ${status}: ${reasonOf(text) || 'no reason given'}` };
  throw failed(`HTTP ${status}${text ? ` (${excerpt(text)})` : ''}`, { status });
}
