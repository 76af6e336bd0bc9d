import type http from 'node:http';
import createHttpsProxyAgent from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import WebSocket from 'ws';
import { PUSH_MAX_BYTES, PushMessage } from '../../../common/push.js';
import { describeError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';
import { type BackendCredentials, CredentialsUnavailable } from './agent-credentials.js';

export interface PushClientOptions {
  readonly url: string;
  readonly log: Logger;
  readonly onPush: (message: PushMessage) => void;
  /**
   * The first reconnect comes at a random moment within this window (full jitter), and each further
   * one within a window twice the last, up to maxBackoffMs: when a server node dies, its agents
   * come back to the others spread over the window, not in one burst.
   */
  readonly reconnectWindowMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * The channel is open again after it was lost: a publish made meanwhile was pushed to no one, so
   * the owner checks for an update once.
   */
  readonly onReconnect?: () => void;
  /** The server pings every 30 s; silence for this long means a dead connection (a sleeping NAT, a cable). */
  readonly silenceMs?: number;
  readonly random?: () => number;
  /** The proxy for a URL (default: from HTTP_PROXY/HTTPS_PROXY/NO_PROXY, as axios does for HTTP). */
  readonly proxyFor?: (url: string) => string;
  /** The CAs to trust for a wss:// URL (the organisation's added); else Node's defaults. */
  readonly ca?: readonly string[];
  /** The agent's token at a backend that authenticates agents (agent-credentials.ts); omitted: none sent. */
  readonly credentials?: BackendCredentials;
}

/** A refusal's body is a sentence; more is not read. */
const REFUSAL_MAX_BYTES = 4 * 1024;

/**
 * The backend's WebSocket, kept open: reconnects with exponential backoff and full jitter (so a
 * server node's death or restart is not met by all its agents at the same instant), tells its owner
 * when it is back (to check once for what it missed), answers pings (ws does) and drops a
 * connection that has gone silent. A push is only a hint to check the feed now.
 */
export class PushClient {
  readonly #options: Required<Omit<PushClientOptions, 'onPush' | 'log' | 'url' | 'proxyFor' | 'ca' | 'onReconnect' | 'credentials'>> & PushClientOptions;
  #socket: WebSocket | undefined;
  #retry: NodeJS.Timeout | undefined;
  #silence: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;
  #connectedOnce = false;

  constructor(options: PushClientOptions) {
    const reconnectWindowMs = options.reconnectWindowMs ?? 30_000;
    this.#options = { reconnectWindowMs, maxBackoffMs: Math.max(60_000, reconnectWindowMs), silenceMs: 75_000, random: Math.random, ...options };
  }

  start(): void {
    this.#connect();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    clearTimeout(this.#silence);
    this.#socket?.terminate();
  }

  /** Gets the agent's credentials first (enrolling if needed): without them an authenticating backend would only refuse. */
  #connect(): void {
    const { credentials, log } = this.#options;
    if (!credentials) {
      this.#open(undefined);
      return;
    }
    credentials.authorization().then(
      (authorization) => {
        if (!this.#closed) this.#open(authorization);
      },
      (error: unknown) => {
        if (this.#closed) return;
        if (error instanceof CredentialsUnavailable && error.revoked) {
          log.warn('push channel closed for good: this agent was revoked by an operator at the backend');
          return;
        }
        if (this.#failures === 0) log.warn(`push channel not opened: ${describeError(error)}; polling continues, trying again with backoff`);
        this.#retryLater();
      },
    );
  }

  #open(authorization: string | undefined): void {
    const { url, log } = this.#options;
    const proxy = proxyFor(url, this.#options.proxyFor);
    if (proxy && this.#failures === 0 && !this.#connectedOnce) log.info(`push channel through the proxy ${redact(proxy)}`);
    const options: WebSocket.ClientOptions = {
      maxPayload: PUSH_MAX_BYTES,
      handshakeTimeout: 10_000,
      ...(this.#options.ca && { ca: [...this.#options.ca] }),
      ...(authorization && { headers: { Authorization: authorization } }),
    };
    // agent-base's Agent is an http.Agent at run time; its typings predate @types/node 24.
    if (proxy) options.agent = createHttpsProxyAgent(proxy) as unknown as http.Agent;
    const socket = new WebSocket(url, options);
    this.#socket = socket;
    socket.on('open', () => {
      if (this.#failures > 0 || !this.#connectedOnce) log.info(`push channel open (${url})`);
      const reconnected = this.#connectedOnce;
      this.#failures = 0;
      this.#connectedOnce = true;
      this.#heard();
      if (reconnected) this.#options.onReconnect?.();
    });
    socket.on('ping', () => this.#heard());
    socket.on('message', (data, isBinary) => {
      this.#heard();
      const parsed = isBinary ? null : safeParse(data.toString());
      if (!parsed) {
        log.warn('push message ignored: not a message this agent knows');
        return;
      }
      this.#options.onPush(parsed);
    });
    // The server answered the upgrade with an HTTP error: its body says why (a token it no longer knows, a revoked agent).
    let refusal: string | undefined;
    socket.on('unexpected-response', (_request, response) => {
      const status = response.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let length = 0;
      const done = () => {
        const body = Buffer.concat(chunks).toString('utf8');
        refusal = `HTTP ${status}: ${body.slice(0, 300) || 'no reason given'}`;
        if (status === 401 || status === 403) this.#options.credentials?.refused(status, body);
        socket.terminate();
      };
      response.on('data', (chunk: Buffer) => {
        length += chunk.length;
        if (length <= REFUSAL_MAX_BYTES) chunks.push(chunk);
      });
      response.once('end', done);
      response.once('error', done);
    });
    socket.on('error', (error) => {
      // 'close' follows; log the first failure of a series only, not one line per retry.
      if (this.#failures === 0) log.warn(`push channel error: ${refusal ?? describeError(error)}; polling continues, reconnecting with backoff`);
    });
    socket.on('close', () => {
      clearTimeout(this.#silence);
      if (!this.#closed) this.#retryLater();
    });
  }

  /** A failure more: the next attempt at a random moment within a window that doubles with each failure (full jitter). */
  #retryLater(): void {
    this.#failures++;
    const window = Math.min(this.#options.maxBackoffMs, this.#options.reconnectWindowMs * 2 ** Math.min(this.#failures - 1, 20));
    this.#retry = setTimeout(() => this.#connect(), Math.round(this.#options.random() * window));
  }

  #heard(): void {
    clearTimeout(this.#silence);
    this.#silence = setTimeout(() => {
      this.#options.log.warn(`push channel silent for ${this.#options.silenceMs} ms; reconnecting`);
      this.#socket?.terminate();
    }, this.#options.silenceMs);
  }
}

/**
 * The same proxy rules as the agent's HTTP (axios and proxy-from-env): a ws:// URL is looked up as
 * http://, wss:// as https://. The WebSocket then goes through the proxy with HTTP CONNECT.
 */
function proxyFor(url: string, lookup?: (url: string) => string): string {
  const asHttp = url.replace(/^ws/, 'http');
  return (lookup ?? getProxyForUrl)(asHttp);
}

/** A proxy URL for the log, without its password. */
function redact(proxy: string): string {
  try {
    const u = new URL(proxy);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable proxy URL)';
  }
}

function safeParse(text: string): PushMessage | null {
  try {
    const result = PushMessage.safeParse(JSON.parse(text));
    return result.success ? result.data : null;
  } catch {
    return null;
  }
}
