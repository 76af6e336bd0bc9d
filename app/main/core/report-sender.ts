import net from 'node:net';
import type { AxiosResponse } from 'axios';
import { type ErrorReport, REPORT_MAX_BYTES, ReportAck } from '../../common/reports.js';
import { ErrorCode, errnoCode, OutpostError } from '../../base/errors.js';
import { tryParseJson } from '../../base/jsonl.js';


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

export interface HttpReportSenderOptions {
  /** The backend's base URL (`backend.url`); `/reports` is appended, a trailing slash or not. */
  readonly baseUrl: string;
  /** The whole request, connect to last byte of the answer. */
  readonly timeoutMs: number;
  readonly userAgent: string;
  /** The CAs to trust for an https backend (the organisation's added); else Node's defaults. */
  readonly ca?: readonly string[];
}

/** An acknowledgement is a few dozen bytes; anything much bigger is not our backend talking. */
const ANSWER_MAX_BYTES = 16 * 1024;
const REASON_MAX_CHARS = 300;

/**
 * `POST <baseUrl>/reports` with axios.
 *
 * Proxies: axios follows HTTP_PROXY / HTTPS_PROXY / NO_PROXY from the environment (read at each
 * request), and this sender keeps that, since the product must work behind corporate proxies.
 * NO_PROXY works as expected, including CIDR entries and `localhost` matching 127.0.0.1 and ::1.
 * But with a proxy set and no NO_PROXY entry for it, axios 1.21 sends even http://127.0.0.1 and
 * http://localhost through the proxy (checked by hand, and in the integration test): a loopback URL
 * through a proxy reaches the proxy's own loopback, never this machine's backend. So a loopback
 * base URL always goes direct (`proxy: false`), whatever the environment says. Under Node's own
 * proxy support (NODE_USE_ENV_PROXY=1, Node ≥ 24.5) axios leaves proxying to Node's agent, which
 * reads the environment once at start-up; `proxy: false` still makes axios use a direct agent.
 */
export class HttpReportSender implements ReportSender {
  readonly #url: string;
  /** The URL without credentials or query, for messages and logs. */
  readonly #where: string;
  readonly #direct: boolean;
  readonly #options: HttpReportSenderOptions;
  #httpsAgent: import('node:https').Agent | undefined;

  constructor(options: HttpReportSenderOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch (error) {
      throw new OutpostError(ErrorCode.CONFIG_INVALID, `The backend URL ${JSON.stringify(options.baseUrl)} is not a URL.`, { cause: error });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new OutpostError(ErrorCode.CONFIG_INVALID, `The backend URL must be http or https, not ${url.protocol}.`);
    }
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/reports`;
    url.search = '';
    url.hash = '';
    this.#url = url.href;
    this.#where = `${url.origin}${url.pathname}`;
    this.#direct = isLoopbackHost(url.hostname);
    this.#options = options;
  }

  get url(): string {
    return this.#where;
  }

  async send(report: ErrorReport, signal?: AbortSignal): Promise<SendResult> {
    const body = JSON.stringify(report);
    const bytes = Buffer.byteLength(body);
    // The backend answers 413 to this; say so without the round trip.
    if (bytes > REPORT_MAX_BYTES) return { outcome: 'refused', reason: `the report is ${bytes} bytes, more than ${REPORT_MAX_BYTES}` };
    const { timeoutMs, userAgent, ca } = this.#options;
    // Loaded for the first report, not at start: axios and what it loads on import (undici, which
    // it probes for fetch, and Node's http, https and http2) cost an idle agent about 10 MB.
    const { default: axios } = await import('axios');
    if (ca && !this.#httpsAgent) this.#httpsAgent = new (await import('node:https')).Agent({ ca: [...ca], keepAlive: true });
    let response: AxiosResponse<unknown>;
    try {
      response = await axios.post(this.#url, body, {
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'User-Agent': userAgent },
        // `timeout` is a socket idle timeout; the signal bounds the whole exchange (and the caller may cut it).
        timeout: timeoutMs,
        signal: signal ? AbortSignal.any([AbortSignal.timeout(timeoutMs), signal]) : AbortSignal.timeout(timeoutMs),
        maxBodyLength: REPORT_MAX_BYTES,
        maxContentLength: ANSWER_MAX_BYTES,
        // A redirect means a misconfigured URL; following it would turn the POST into a GET.
        maxRedirects: 0,
        responseType: 'text',
        transformResponse: [(data: unknown) => data],
        validateStatus: () => true,
        ...(this.#direct ? { proxy: false as const } : {}),
        ...(this.#httpsAgent && { httpsAgent: this.#httpsAgent }),
      });
    } catch (error) {
      const why = signal?.aborted ? 'cancelled by the caller' : describeFailure(error, timeoutMs);
      throw new ReportSendError(`Report ${report.id} not delivered to ${this.#where}: ${why}.`, {
        cause: error,
        details: { url: this.#where },
      });
    }
    return this.#judge(report, response);
  }

  #judge(report: ErrorReport, response: AxiosResponse<unknown>): SendResult {
    const { status } = response;
    const text = typeof response.data === 'string' ? response.data : '';
    const failed = (what: string) =>
      new ReportSendError(`Report ${report.id} not delivered to ${this.#where}: ${what}.`, { details: { url: this.#where, status } });
    if (status === 200 || status === 202) {
      const ack = ReportAck.safeParse(tryParseJson(text));
      if (!ack.success) throw failed(`HTTP ${status} with an invalid acknowledgement (${excerpt(text) || 'empty body'})`);
      return { outcome: ack.data.duplicate ? 'duplicate' : 'accepted' };
    }
    // 408 and 429 are 4xx but say "not now", not "never".
    if (status === 408 || status === 429) {
      const retryAfter = response.headers['retry-after'];
      throw failed(`HTTP ${status}${typeof retryAfter === 'string' ? ` (retry after ${retryAfter})` : ''}`);
    }
    if (status >= 400 && status < 500) return { outcome: 'refused', reason: `HTTP ${status}: ${reasonOf(text) || 'no reason given'}` };
    throw failed(`HTTP ${status}${text ? ` (${excerpt(text)})` : ''}`);
  }
}

/** localhost, 127.0.0.0/8, ::1 and ::ffff:127.x.y.z (the URL parser writes that ::ffff:7fxx:xxxx). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (!net.isIPv6(host)) return false;
  if (host === '::1') return true;
  const mapped = /^::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}$/.exec(host)?.[1];
  return mapped !== undefined && Number.parseInt(mapped, 16) >> 8 === 127;
}

function describeFailure(error: unknown, timeoutMs: number): string {
  // An AxiosError without a code of its own carries the socket's error as its cause.
  const code = errnoCode(error) ?? errnoCode(error instanceof Error ? error.cause : undefined);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (is the backend running?)';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'the connection was reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to the host';
    case 'ECONNABORTED':
    case 'ETIMEDOUT':
    case 'ERR_CANCELED':
      return `no answer within ${timeoutMs} ms (timeout)`;
    default: {
      const message = error instanceof Error ? error.message : String(error);
      return code ? `${code}: ${message}` : message;
    }
  }
}

/** The backend's own words for a refusal: `{ "error": "..." }` or `{ "message": "..." }`, else the text. */
function reasonOf(text: string): string {
  const body = tryParseJson(text);
  if (typeof body === 'object' && body !== null) {
    for (const field of ['error', 'message', 'reason'] as const) {
      const value = (body as Record<string, unknown>)[field];
      if (typeof value === 'string' && value) return excerpt(value);
    }
  }
  return excerpt(text);
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > REASON_MAX_CHARS ? `${flat.slice(0, REASON_MAX_CHARS)}…` : flat;
}
