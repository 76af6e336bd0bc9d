import net from 'node:net';
import type { AxiosResponse } from 'axios';
import { describeError, ErrorCode, errnoCode, OutpostError } from '../../../base/errors.js';
import { tryParseJson } from '../../../base/jsonl.js';

export interface BackendHttpOptions {
  /** The backend's base URL (`backend.url`); an endpoint's path is appended, a trailing slash or not. */
  readonly baseUrl: string;
  /** The whole request, connect to last byte of the answer. */
  readonly timeoutMs: number;
  readonly userAgent: string;
  /** The CAs to trust for an https backend (the organisation's added); else Node's defaults. */
  readonly ca?: readonly string[];
}

/** An answer is a few dozen bytes (an acknowledgement, a token); anything much bigger is not our backend talking. */
const ANSWER_MAX_BYTES = 16 * 1024;
const REASON_MAX_CHARS = 300;

/** An answer, whatever its status; the body as text. */
export interface BackendAnswer {
  readonly status: number;
  readonly text: string;
  readonly retryAfter: string | undefined;
}

/** No answer at all (refused, reset, timeout, cancelled): the message says which, in words. */
export class BackendUnreachable extends Error {
  constructor(why: string, cause: unknown) {
    super(why, { cause });
    this.name = 'BackendUnreachable';
  }
}

/**
 * JSON POSTs to the backend's endpoints (`/reports`, `/enroll`) with axios.
 *
 * Proxies: axios follows HTTP_PROXY / HTTPS_PROXY / NO_PROXY from the environment (read at each
 * request), and this client keeps that, since the product must work behind corporate proxies.
 * NO_PROXY works as expected, including CIDR entries and `localhost` matching 127.0.0.1 and ::1.
 * But with a proxy set and no NO_PROXY entry for it, axios 1.21 sends even http://127.0.0.1 and
 * http://localhost through the proxy (checked by hand, and in the integration test): a loopback URL
 * through a proxy reaches the proxy's own loopback, never this machine's backend. So a loopback
 * base URL always goes direct (`proxy: false`), whatever the environment says. Under Node's own
 * proxy support (NODE_USE_ENV_PROXY=1, Node ≥ 24.5) axios leaves proxying to Node's agent, which
 * reads the environment once at start-up; `proxy: false` still makes axios use a direct agent.
 */
export class BackendHttp {
  readonly #base: URL;
  readonly #direct: boolean;
  readonly #options: BackendHttpOptions;
  #httpsAgent: import('node:https').Agent | undefined;

  constructor(options: BackendHttpOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch (error) {
      throw new OutpostError(ErrorCode.CONFIG_INVALID, `The backend URL ${JSON.stringify(options.baseUrl)} is not a URL.`, { cause: error });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new OutpostError(ErrorCode.CONFIG_INVALID, `The backend URL must be http or https, not ${url.protocol}.`);
    }
    url.search = '';
    url.hash = '';
    this.#base = url;
    this.#direct = isLoopbackHost(url.hostname);
    this.#options = options;
  }

  /** The URL of an endpoint (`/reports`), and the same without credentials, for messages and logs. */
  endpoint(name: string): { readonly url: string; readonly where: string } {
    const url = new URL(this.#base);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${name}`;
    return { url: url.href, where: `${url.origin}${url.pathname}` };
  }

  /** POSTs `body` (JSON text); resolves with any answer, throws BackendUnreachable when there is none. */
  async post(name: string, body: string, options: { readonly headers?: Readonly<Record<string, string>>; readonly signal?: AbortSignal | undefined; readonly maxBodyLength: number }): Promise<BackendAnswer> {
    const { timeoutMs, userAgent, ca } = this.#options;
    const { signal } = options;
    // Loaded for the first request, not at start: axios and what it loads on import (undici, which
    // it probes for fetch, and Node's http, https and http2) cost an idle agent about 10 MB.
    const { default: axios } = await import('axios');
    if (ca && !this.#httpsAgent) this.#httpsAgent = new (await import('node:https')).Agent({ ca: [...ca], keepAlive: true });
    let response: AxiosResponse<unknown>;
    try {
      response = await axios.post(this.endpoint(name).url, body, {
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'User-Agent': userAgent, ...options.headers },
        // `timeout` is a socket idle timeout; the signal bounds the whole exchange (and the caller may cut it).
        timeout: timeoutMs,
        signal: signal ? AbortSignal.any([AbortSignal.timeout(timeoutMs), signal]) : AbortSignal.timeout(timeoutMs),
        maxBodyLength: options.maxBodyLength,
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
      throw new BackendUnreachable(signal?.aborted ? 'cancelled by the caller' : describeFailure(error, timeoutMs), error);
    }
    const retryAfter = response.headers['retry-after'];
    return { status: response.status, text: typeof response.data === 'string' ? response.data : '', retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined };
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
      const message = describeError(error);
      return code ? `${code}: ${message}` : message;
    }
  }
}

/** The backend's own words for a refusal: `{ "error": "..." }` or `{ "message": "..." }`, else the text. */
export function reasonOf(text: string): string {
  const body = tryParseJson(text);
  if (typeof body === 'object' && body !== null) {
    for (const field of ['error', 'message', 'reason'] as const) {
      const value = (body as Record<string, unknown>)[field];
      if (typeof value === 'string' && value) return excerpt(value);
    }
  }
  return excerpt(text);
}

export function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > REASON_MAX_CHARS ? `${flat.slice(0, REASON_MAX_CHARS)}…` : flat;
}
