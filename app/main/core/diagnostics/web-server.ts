import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { describeError, ErrorCode, OutpostError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';
import { DIAGNOSTICS_WS_PATH, type DiagnosticsApi, PAGE_HEADERS } from '../../../common/diagnostics.js';
import { ApiSockets, refuseDiagnosticsUpgrade } from './api-sockets.js';
import { loadPageFiles, type PageFile } from './page-files.js';
import { RefusalLog } from './refusal-log.js';
import { SessionToken } from './session-token.js';

export interface DiagnosticsWebServerOptions {
  /** What the page's calls run on (for `outpost diagnostics`, the agent over the authenticated IPC). */
  readonly api: DiagnosticsApi;
  /** The built page: index.html, diagnostics.js, styles.css (dist/app/renderer). */
  readonly pageDir: string;
  /** A loopback address (127.0.0.0/8 or ::1); anything else is refused. Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port, chosen by the OS. */
  readonly port?: number;
  readonly log: Logger;
  /** Where the token and the session id come from. Default: crypto.randomBytes. */
  readonly random?: (bytes: number) => Buffer;
  /** How often open pages are pinged. Default 15 s. */
  readonly heartbeatMs?: number;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_HEARTBEAT_MS = 15_000;

/** Short: a browser on loopback sends a request in milliseconds; whatever holds a connection longer is not one. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 10_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** On every answer, refusals included: nothing this server sends may be framed, sniffed, cached, or shared with another origin. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  ...PAGE_HEADERS,
  // A browser tab, unlike the desktop app's window, can be framed, opened by or embedded in another site's page.
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/**
 * `outpost diagnostics`: the diagnostics page for a headless agent, served on loopback to the user's
 * own browser, its API carried on a WebSocket (DIAGNOSTICS_WS_PATH). Any web page the user has open
 * can send requests to loopback, so every request must prove three things: it names this server in
 * its Host (a DNS-rebinding page names its own domain), it carries the session that only the
 * one-time link opens (see SessionToken), and, for the WebSocket, that it comes from a page this
 * server served (its Origin). close() stops the listener, every connection and every timer.
 */
export class DiagnosticsWebServer {
  /** The link to print: it opens the page once. */
  readonly url: string;
  /** The page's origin, e.g. http://127.0.0.1:49152. */
  readonly origin: string;
  readonly #http: http.Server;
  readonly #page: ReadonlyMap<string, PageFile>;
  readonly #session: SessionToken;
  readonly #sockets: ApiSockets;
  readonly #refusals: RefusalLog;
  /** The Host headers that name this server. */
  readonly #hosts: ReadonlySet<string>;
  #closing: Promise<void> | undefined;

  private constructor(parts: { http: http.Server; page: ReadonlyMap<string, PageFile>; session: SessionToken; sockets: ApiSockets; refusals: RefusalLog; authority: string; port: number }) {
    this.#http = parts.http;
    this.#page = parts.page;
    this.#session = parts.session;
    this.#sockets = parts.sockets;
    this.#refusals = parts.refusals;
    this.#hosts = new Set([parts.authority, `localhost:${parts.port}`]);
    this.origin = `http://${parts.authority}`;
    this.url = `${this.origin}/?token=${parts.session.token}`;
  }

  static async start(options: DiagnosticsWebServerOptions): Promise<DiagnosticsWebServer> {
    const host = options.host ?? DEFAULT_HOST;
    if (!isLoopback(host)) {
      throw new OutpostError(ErrorCode.USAGE, `The diagnostics page is served on loopback only, and ${host} is not a loopback address: use 127.0.0.1 (or ::1).`, { details: { host } });
    }
    const page = await loadPageFiles(options.pageDir);
    const log = options.log;
    const refusals = new RefusalLog(log);
    const server = http.createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS });
    const port = await listen(server, host, options.port ?? 0);
    const sockets = new ApiSockets({ api: options.api, log, refusals, heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS });
    const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
    const web = new DiagnosticsWebServer({ http: server, page, session: new SessionToken(options.random ?? randomBytes, port), sockets, refusals, authority, port });
    server.on('request', (req, res) => web.#request(req, res));
    server.on('upgrade', (req, socket, head) => web.#upgrade(req, socket, head));
    // After start, an error here is a failed accept (out of file descriptors...): worth a line, not a crash.
    server.on('error', (error) => log.warn(`diagnostics page server: ${error.message}`));
    log.info(`diagnostics page served at ${web.origin}`);
    return web;
  }

  /** Stops listening and closes every connection, pages' WebSockets included. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#sockets.close();
      this.#http.close(() => resolve());
      this.#http.closeAllConnections();
    });
    return this.#closing;
  }

  #request(req: http.IncomingMessage, res: http.ServerResponse): void {
    // The path as sent, never normalized: it is only ever looked up in the page's allow-list.
    const target = req.url ?? '';
    const queryAt = target.indexOf('?');
    const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
    if (!this.#namesThisServer(req)) {
      this.#refuseForeignHost(req);
      reply(res, 421, 'This server answers only to the address that `outpost diagnostics` printed.');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      reply(res, 405, 'Only GET and HEAD are answered here.');
      return;
    }
    const file = this.#page.get(rawPath);
    if (file === undefined) {
      reply(res, 404, 'Not found.');
      return;
    }
    const token = rawPath === '/' && queryAt !== -1 ? new URLSearchParams(target.slice(queryAt + 1)).get('token') : null;
    if (token !== null) {
      this.#redeem(res, token);
      return;
    }
    if (!this.#session.admits(req.headers.cookie)) {
      this.#refusals.refused('no-session', `${req.method} ${rawPath} without the session cookie`);
      reply(res, 403, 'Open the link that `outpost diagnostics` printed: this browser has no session with this server.');
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': file.contentType, 'Content-Length': file.body.length });
    res.end(file.body);
  }

  /** The one-time link: a session cookie and a redirect to the page, so that the token leaves the address bar. */
  #redeem(res: http.ServerResponse, token: string): void {
    const redemption = this.#session.redeem(token);
    if (redemption.ok) {
      res.writeHead(303, { ...SECURITY_HEADERS, Location: '/', 'Set-Cookie': this.#session.cookieHeader(redemption.session), 'Content-Length': 0 });
      res.end();
      return;
    }
    if (redemption.reason === 'used') {
      this.#refusals.refused('used-token', 'the one-time link was opened again');
      reply(res, 403, 'This link has been used; run `outpost diagnostics` again for a new one.');
    } else {
      this.#refusals.refused('wrong-token', 'a link with a token this server did not make');
      reply(res, 403, 'This link is not the one `outpost diagnostics` printed; copy the whole link, or run `outpost diagnostics` again for a new one.');
    }
  }

  #upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (!this.#namesThisServer(req)) {
      this.#refuseForeignHost(req);
      refuseDiagnosticsUpgrade(socket, 421, 'this server answers only to the address that `outpost diagnostics` printed');
      return;
    }
    if (req.url !== DIAGNOSTICS_WS_PATH) {
      refuseDiagnosticsUpgrade(socket, 404, 'not found');
      return;
    }
    // The Host is one of ours (checked above), so this is the origin of a page this server served.
    if (req.headers.origin !== `http://${req.headers.host}`) {
      this.#refusals.refused('foreign-origin', req.headers.origin === undefined ? 'a WebSocket without an Origin (not a browser page)' : `a WebSocket from the page of ${JSON.stringify(req.headers.origin.slice(0, 200))}`);
      refuseDiagnosticsUpgrade(socket, 403, 'only the diagnostics page itself may connect');
      return;
    }
    if (!this.#session.admits(req.headers.cookie)) {
      this.#refusals.refused('no-session', 'a WebSocket without the session cookie');
      refuseDiagnosticsUpgrade(socket, 403, 'open the link that `outpost diagnostics` printed first');
      return;
    }
    this.#sockets.accept(req, socket, head);
  }

  /** Whether the request's Host is this server's address, as a page loaded from it names it (DNS rebinding names another). */
  #namesThisServer(req: http.IncomingMessage): boolean {
    return req.headers.host !== undefined && this.#hosts.has(req.headers.host);
  }

  #refuseForeignHost(req: http.IncomingMessage): void {
    const host = req.headers.host === undefined ? 'no Host' : `Host ${JSON.stringify(req.headers.host.slice(0, 200))}`;
    this.#refusals.refused('foreign-host', `${req.method} with ${host}, which is not this server (DNS rebinding?)`);
  }
}

/** A plain-text answer with the security headers; Node leaves the body out for HEAD. */
function reply(res: http.ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function isLoopback(host: string): boolean {
  if (net.isIPv4(host)) return host.startsWith('127.');
  return host === '::1';
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) =>
      reject(new OutpostError(ErrorCode.NOT_AVAILABLE, `The diagnostics page cannot be served on ${host}:${port}: ${describeError(error)}. Choose another port, or 0 for any free one.`, { cause: error, details: { host, port } }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}
