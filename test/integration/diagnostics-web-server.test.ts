/**
 * The loopback server of `outpost diagnostics`, over real sockets: the one-time link, the session
 * cookie, the page's files and headers, the WebSocket carrier, and each refusal (a foreign Host, a
 * foreign or missing Origin, no session, oversized or binary messages, too many calls or pages).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { ErrorCode, isOutpostError, OutpostError } from '../../app/base/errors.js';
import {
  API_MAX_CALL_BYTES,
  ApiResult,
  DIAGNOSTICS_CSP,
  DIAGNOSTICS_WS_PATH,
  type ActionResult,
  type DiagnosticsApi,
  DiagnosticsView,
  type ReadParams,
} from '../../app/common/diagnostics.js';
import { MAX_API_SOCKETS, MAX_CALLS_IN_FLIGHT } from '../../app/main/core/diagnostics/api-sockets.js';
import { sessionCookieName } from '../../app/main/core/diagnostics/session-token.js';
import { DiagnosticsWebServer, type DiagnosticsWebServerOptions } from '../../app/main/core/diagnostics/web-server.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { DIST, tempDir } from '../helpers/paths.js';
import { Child } from '../helpers/processes.js';
import { refusalOf } from '../server/helpers.js';

const PAGE_DIR = path.join(DIST, 'app', 'renderer');

/**
 * What breaks here tends to hang rather than throw (a call never answered, a close() waiting on a
 * connection it left open): each test and each server's close is bounded so that it fails instead.
 * The bounds time nothing; a passing test takes milliseconds.
 */
const BOUNDED = { timeout: 30_000 };

/** A view as an agent would build it, checked against the contract so that it stays one. */
const VIEW = DiagnosticsView.parse({
  at: '2025-06-01T10:00:00.000Z',
  agent: { state: 'IDLE', state_since: '2025-06-01T09:00:00.000Z', version: '0.1.0', pid: 4242, uptime_s: 3600, storage: '/var/lib/outpost', logs: '/var/lib/outpost/logs', shell: 'headless' },
  lock: { pid: 4242, version: '0.1.0', acquired_at: '2025-06-01T09:00:00.000Z', heartbeat_at: '2025-06-01T09:59:55.000Z' },
  update: {
    enabled: true,
    channel: 'stable',
    last_check: '2025-06-01T09:58:00.000Z',
    last_result: { ok: true, message: 'up to date' },
    offered: null,
    staged: null,
    last_error: null,
    last_download: null,
    progress: null,
    held_back: [],
    last_job: null,
  },
  reports: { queued: 0 },
  log: { cursor: { file: 'outpost.log', offset: 120 }, lines: [{ at: '2025-06-01T09:59:00.000Z', level: 'info', text: 'update check: up to date' }], truncated: false },
});

/**
 * An in-process stand-in for the agent (which `outpost diagnostics` reaches over the IPC): it records
 * the reads it is asked for, and `checkNow` answers only when the test releases it.
 */
class StandInAgent implements DiagnosticsApi {
  readonly reads: ReadParams[] = [];
  readonly #waiting: Array<() => void> = [];

  async read(params: ReadParams): Promise<DiagnosticsView> {
    this.reads.push(params);
    return VIEW;
  }

  checkNow(): Promise<ActionResult> {
    return new Promise((resolve) => this.#waiting.push(() => resolve({ ok: true, message: 'checking for updates' })));
  }

  async openLogFolder(): Promise<ActionResult> {
    throw new OutpostError(ErrorCode.NOT_AVAILABLE, 'Opening folders is for the desktop app.');
  }

  async bundle() {
    return { file_name: 'outpost-diagnostics.txt', text: 'state: IDLE' };
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  releaseChecks(): void {
    for (const answer of this.#waiting.splice(0)) answer();
  }
}

async function startServer(t: TestContext, options: Partial<DiagnosticsWebServerOptions> = {}) {
  const agent = new StandInAgent();
  const log = memoryLogger();
  const server = await DiagnosticsWebServer.start({ api: agent, pageDir: PAGE_DIR, log, ...options });
  t.after(() => server.close(), BOUNDED);
  return { server, agent, log, host: new URL(server.origin).host };
}

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A request as written, path unnormalized, with the Host of this server unless another is given. */
function request(server: DiagnosticsWebServer, requestPath: string, options: { method?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<Reply> {
  const { hostname, port, host } = new URL(server.origin);
  return new Promise((resolve, reject) => {
    // URL keeps an IPv6 address in its brackets; a socket address has none.
    const req = http.request({ hostname: hostname.replace(/^\[(.*)\]$/, '$1'), port, path: requestPath, method: options.method ?? 'GET', headers: { Host: host, ...options.headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens the one-time link as a browser would and returns the session cookie it sets (`name=value`). */
async function logIn(server: DiagnosticsWebServer): Promise<string> {
  const url = new URL(server.url);
  const reply = await request(server, `${url.pathname}${url.search}`);
  assert.equal(reply.status, 303, reply.body);
  const cookie = reply.headers['set-cookie']?.[0];
  assert.ok(cookie, 'the link sets a cookie');
  return cookie.split(';')[0] ?? '';
}

interface SocketOptions {
  readonly origin?: string;
  readonly cookie?: string;
  readonly host?: string;
  readonly path?: string;
  readonly autoPong?: boolean;
}

function socketTo(server: DiagnosticsWebServer, options: SocketOptions): WebSocket {
  const headers: Record<string, string> = {};
  if (options.cookie !== undefined) headers.Cookie = options.cookie;
  if (options.host !== undefined) headers.Host = options.host;
  return new WebSocket(`${server.origin.replace('http:', 'ws:')}${options.path ?? DIAGNOSTICS_WS_PATH}`, {
    headers,
    ...(options.origin !== undefined && { origin: options.origin }),
    ...(options.autoPong !== undefined && { autoPong: options.autoPong }),
  });
}

/** The page's WebSocket, opened with what the page's browser would send. */
async function pageSocket(t: TestContext, server: DiagnosticsWebServer, cookie: string, options: Omit<SocketOptions, 'origin' | 'cookie'> = {}): Promise<WebSocket> {
  const ws = socketTo(server, { origin: server.origin, cookie, ...options });
  t.after(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

/** How an upgrade with these headers is answered, when it is refused (fails if it is accepted). */
function upgradeRefusal(server: DiagnosticsWebServer, options: SocketOptions): Promise<{ status: number; body: string }> {
  return refusalOf(socketTo(server, options));
}

/** The next message from the server, as an ApiResult. */
function nextResult(ws: WebSocket): Promise<ApiResult> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data) => resolve(ApiResult.parse(JSON.parse(String(data)))));
    ws.once('close', (code) => reject(new Error(`closed with ${code} before answering`)));
  });
}

function call(ws: WebSocket, message: string): Promise<ApiResult> {
  const answer = nextResult(ws);
  ws.send(message);
  return answer;
}

/** Whether the server answers the next message or closes the socket. */
function nextEvent(ws: WebSocket): Promise<{ answered: string } | { closed: number }> {
  return new Promise((resolve) => {
    ws.once('message', (data) => resolve({ answered: String(data) }));
    ws.once('close', (code) => resolve({ closed: code }));
  });
}

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

/** The port a server listens on (its session cookie is named for it). */
function port(server: DiagnosticsWebServer): number {
  return Number(new URL(server.origin).port);
}

test('the URL is the server on 127.0.0.1 with a one-time token of 32 random bytes (base64url)', BOUNDED, async (t) => {
  const bytes = Buffer.alloc(32, 0xfb);
  const { server } = await startServer(t, { random: () => bytes });
  const { port } = new URL(server.origin);
  assert.match(port, /^\d+$/);
  assert.equal(server.origin, `http://127.0.0.1:${port}`);
  assert.equal(server.url, `http://127.0.0.1:${port}/?token=${bytes.toString('base64url')}`);
  assert.match(new URL(server.url).searchParams.get('token') ?? '', /^[A-Za-z0-9_-]{43}$/);
});

test('the token works once: a cookie and a redirect to the page, then 403 however it is presented again', BOUNDED, async (t) => {
  const { server, log } = await startServer(t);
  const url = new URL(server.url);
  const token = url.searchParams.get('token') ?? '';

  const first = await request(server, `/?token=${token}`);
  assert.equal(first.status, 303);
  assert.equal(first.headers.location, '/');
  assert.equal(first.headers['cache-control'], 'no-store');
  assert.equal(first.headers['referrer-policy'], 'no-referrer');
  const setCookie = first.headers['set-cookie'] ?? [];
  assert.equal(setCookie.length, 1);
  assert.match(setCookie[0] ?? '', new RegExp(`^outpost_session_${new URL(server.origin).port}=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/$`));
  const cookie = (setCookie[0] ?? '').split(';')[0] ?? '';
  assert.notEqual(cookie.split('=')[1], token, 'the session is not the token');

  const again = await request(server, `/?token=${token}`);
  assert.equal(again.status, 403);
  assert.equal(again.headers['set-cookie'], undefined);
  assert.equal(again.body, 'This link has been used; run `outpost diagnostics` again for a new one.\n');
  const againWithCookie = await request(server, `/?token=${token}`, { headers: { Cookie: cookie } });
  assert.equal(againWithCookie.status, 403, 'the link stays used even in the browser that used it');
  assert.equal(againWithCookie.headers['set-cookie'], undefined);

  assert.equal((await request(server, '/', { headers: { Cookie: cookie } })).status, 200, 'the page itself keeps working on the cookie (a reload)');
  assert.ok(log.lines.some((line) => line.startsWith('warn refused (used-token)')), log.lines.join('\n'));
});

test('no token, a wrong token, an empty token, a forged cookie: 403; a wrong token does not use up the right one', BOUNDED, async (t) => {
  const { server, log } = await startServer(t);
  const none = await request(server, '/');
  assert.equal(none.status, 403);
  assert.match(none.body, /^Open the link that `outpost diagnostics` printed/);
  assert.equal(none.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(none.headers['content-security-policy'], DIAGNOSTICS_CSP);

  const token = new URL(server.url).searchParams.get('token') ?? '';
  const wrongOne = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
  for (const wrong of [wrongOne, '', 'x', token.repeat(2)]) {
    const reply = await request(server, `/?token=${encodeURIComponent(wrong)}`);
    assert.equal(reply.status, 403, `token ${JSON.stringify(wrong)}`);
    assert.match(reply.body, /^This link is not the one `outpost diagnostics` printed/);
  }
  assert.equal((await request(server, '/', { headers: { Cookie: `${sessionCookieName(port(server))}=${token}` } })).status, 403, 'the token is not a session');
  assert.equal((await request(server, '/styles.css', { headers: { Cookie: `${sessionCookieName(port(server))}=forged` } })).status, 403);

  assert.equal((await request(server, `/?token=${token}`)).status, 303);
  assert.ok(log.lines.some((line) => line.startsWith('warn refused (wrong-token)')));
  assert.ok(log.lines.some((line) => line.startsWith('warn refused (no-session)')));
});

test('with the cookie: the page, its script and its stylesheet, each with its type and the security headers; HEAD too', BOUNDED, async (t) => {
  const { server } = await startServer(t);
  const cookie = await logIn(server);
  for (const [urlPath, file, type] of [
    ['/', 'index.html', 'text/html; charset=utf-8'],
    ['/diagnostics.js', 'diagnostics.js', 'text/javascript; charset=utf-8'],
    ['/styles.css', 'styles.css', 'text/css; charset=utf-8'],
  ] as const) {
    // Another cookie of the same name (cookies are not scoped by port) must not hide ours.
    const reply = await request(server, urlPath, { headers: { Cookie: `${sessionCookieName(port(server))}=from-another-server; ${cookie}` } });
    assert.equal(reply.status, 200, urlPath);
    assert.equal(reply.body, fs.readFileSync(path.join(PAGE_DIR, file), 'utf8'), urlPath);
    assert.equal(reply.headers['content-type'], type);
    assert.equal(reply.headers['content-security-policy'], DIAGNOSTICS_CSP);
    assert.equal(reply.headers['x-content-type-options'], 'nosniff');
    assert.equal(reply.headers['x-frame-options'], 'DENY');
    assert.equal(reply.headers['cache-control'], 'no-store');
    assert.equal(reply.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(reply.headers['cross-origin-resource-policy'], 'same-origin');
    assert.equal(reply.headers['referrer-policy'], 'no-referrer');

    const head = await request(server, urlPath, { method: 'HEAD', headers: { Cookie: cookie } });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(fs.statSync(path.join(PAGE_DIR, file)).size));
    assert.equal(head.body, '');
  }
  const page = await request(server, '/', { headers: { Cookie: cookie } });
  assert.match(page.body, /<script src="diagnostics\.js"/, 'the page loads the script this server serves');
  assert.match(page.body, /<link rel="stylesheet" href="styles\.css">/);
});

test('a foreign Host (DNS rebinding) is refused on pages and on the upgrade, cookie or not; localhost:<port> is this server', BOUNDED, async (t) => {
  const { server, log } = await startServer(t);
  const cookie = await logIn(server);
  const port = new URL(server.origin).port;
  for (const foreign of [`evil.example:${port}`, 'evil.example', `127.0.0.1:${Number(port) + 1}`, '127.0.0.1', `127.0.0.1.evil.example:${port}`]) {
    const page = await request(server, '/', { headers: { Host: foreign, Cookie: cookie } });
    assert.equal(page.status, 421, foreign);
    assert.equal(page.body, 'This server answers only to the address that `outpost diagnostics` printed.\n');
    assert.equal((await request(server, '/?token=whatever', { headers: { Host: foreign } })).status, 421);
    const upgrade = await upgradeRefusal(server, { host: foreign, origin: `http://${foreign}`, cookie });
    assert.equal(upgrade.status, 421, foreign);
  }
  assert.equal((await request(server, '/', { headers: { Host: `localhost:${port}`, Cookie: cookie } })).status, 200);
  const refusals = log.lines.filter((line) => line.includes('refused (foreign-host'));
  assert.match(refusals[0] ?? '', /^warn refused \(foreign-host\): GET with Host "evil\.example:\d+", which is not this server \(DNS rebinding\?\)$/);
  assert.ok(
    refusals.slice(1).every((line) => line.startsWith('debug ')),
    'later refusals of the same kind are not warnings',
  );
});

test('the upgrade is refused without the exact Origin of the page, without the session, and off its path', BOUNDED, async (t) => {
  const { server, log, host } = await startServer(t);
  const cookie = await logIn(server);
  for (const origin of ['http://evil.example', `https://${host}`, `http://${host}.evil.example`, 'null', `${server.origin}/`]) {
    const refused = await upgradeRefusal(server, { origin, cookie });
    assert.equal(refused.status, 403, origin);
    assert.equal(refused.body, 'only the diagnostics page itself may connect\n');
  }
  assert.equal((await upgradeRefusal(server, { cookie })).status, 403, 'no Origin: not a page');
  assert.equal((await upgradeRefusal(server, { origin: server.origin })).status, 403, 'no cookie');
  assert.equal((await upgradeRefusal(server, { origin: server.origin, cookie: `${sessionCookieName(port(server))}=forged` })).status, 403);
  assert.equal((await upgradeRefusal(server, { origin: server.origin, cookie, path: '/ws' })).status, 404);
  assert.equal((await upgradeRefusal(server, { origin: server.origin, cookie, path: `${DIAGNOSTICS_WS_PATH}?x=1` })).status, 404);
  assert.ok(log.lines.some((line) => line === 'warn refused (foreign-origin): a WebSocket from the page of "http://evil.example"'), log.lines.join('\n'));
  assert.ok(log.lines.some((line) => line.includes('(foreign-origin') && line.includes('without an Origin')));
  assert.ok(log.lines.some((line) => line === 'warn refused (no-session): a WebSocket without the session cookie'));

  await pageSocket(t, server, cookie);
});

test('a call over the socket returns what the API returned, as an ApiResult; its errors keep their code', BOUNDED, async (t) => {
  const { server, agent } = await startServer(t);
  const ws = await pageSocket(t, server, await logIn(server));
  const cursor = { file: 'outpost.log', offset: 7 };
  assert.deepEqual(await call(ws, JSON.stringify({ id: 1, method: 'read', params: { log_after: cursor } })), { id: 1, ok: true, result: VIEW });
  assert.deepEqual(agent.reads, [{ log_after: cursor }]);
  assert.deepEqual(await call(ws, JSON.stringify({ id: 2, method: 'bundle' })), { id: 2, ok: true, result: { file_name: 'outpost-diagnostics.txt', text: 'state: IDLE' } });
  assert.deepEqual(await call(ws, JSON.stringify({ id: 3, method: 'open_log_folder' })), {
    id: 3,
    ok: false,
    error: { code: ErrorCode.NOT_AVAILABLE, message: 'Opening folders is for the desktop app.' },
  });
});

test('a malformed call is answered ok:false ERR_DIAGNOSTICS_BAD_CALL and the page stays connected', BOUNDED, async (t) => {
  const { server, agent } = await startServer(t);
  const ws = await pageSocket(t, server, await logIn(server));
  for (const [message, id] of [
    ['not json', 0],
    ['{"id":5,"method":"format_disk"}', 5],
    ['{"id":6,"method":"read","params":{"log_after":null},"extra":1}', 6],
    ['[]', 0],
  ] as const) {
    const result = await call(ws, message);
    assert.equal(result.ok, false, message);
    assert.equal(result.id, id);
    assert.equal(!result.ok && result.error.code, ErrorCode.DIAGNOSTICS_BAD_CALL, message);
  }
  assert.deepEqual(agent.reads, [], 'nothing reached the API');
  assert.deepEqual(await call(ws, JSON.stringify({ id: 7, method: 'read', params: { log_after: null } })), { id: 7, ok: true, result: VIEW });
});

test('a message over API_MAX_CALL_BYTES closes the socket with 1009; a binary one with 1003', BOUNDED, async (t) => {
  const { server, log } = await startServer(t);
  const cookie = await logIn(server);

  const largest = await pageSocket(t, server, cookie);
  const padded = JSON.stringify({ id: 1, method: 'read', params: { log_after: { file: 'x'.repeat(200), offset: 0 } } });
  const exact = `${padded}${' '.repeat(API_MAX_CALL_BYTES - padded.length)}`;
  assert.equal(Buffer.byteLength(exact), API_MAX_CALL_BYTES);
  assert.equal((await call(largest, exact)).ok, true, 'a call of exactly the limit is taken');

  const oversized = await pageSocket(t, server, cookie);
  const afterOversized = nextEvent(oversized);
  oversized.send(`${exact} `);
  assert.deepEqual(await afterOversized, { closed: 1009 });

  const binary = await pageSocket(t, server, cookie);
  const afterBinary = nextEvent(binary);
  binary.send(Buffer.from(JSON.stringify({ id: 1, method: 'bundle' })), { binary: true });
  assert.deepEqual(await afterBinary, { closed: 1003 });

  assert.ok(log.lines.some((line) => line.startsWith('warn refused (oversized-message)')), log.lines.join('\n'));
  assert.ok(log.lines.some((line) => line.startsWith('warn refused (binary-message)')));
});

test(`at most ${MAX_CALLS_IN_FLIGHT} calls wait per page: the next is answered at once with an error, and calls are taken again once answered`, BOUNDED, async (t) => {
  const { server, agent } = await startServer(t);
  const ws = await pageSocket(t, server, await logIn(server));
  const results: ApiResult[] = [];
  ws.on('message', (data) => results.push(ApiResult.parse(JSON.parse(String(data)))));
  for (let id = 1; id <= MAX_CALLS_IN_FLIGHT; id++) ws.send(JSON.stringify({ id, method: 'check_now' }));
  const refused = nextResult(ws);
  ws.send(JSON.stringify({ id: 99, method: 'check_now' }));
  const answer = await refused;
  assert.equal(answer.id, 99);
  assert.equal(!answer.ok && answer.error.code, ErrorCode.DIAGNOSTICS_BAD_CALL);
  assert.equal(agent.waiting, MAX_CALLS_IN_FLIGHT, 'the refused call never reached the API');

  const all = new Promise<void>((resolve) => ws.on('message', () => results.length === 1 + MAX_CALLS_IN_FLIGHT && resolve()));
  agent.releaseChecks();
  await all;
  const answered = results.slice(1).map((result) => result.id);
  assert.deepEqual(
    answered.sort((a, b) => a - b),
    Array.from({ length: MAX_CALLS_IN_FLIGHT }, (_, i) => i + 1),
  );
  assert.ok(results.slice(1).every((result) => result.ok));
  assert.equal((await call(ws, JSON.stringify({ id: 100, method: 'bundle' }))).ok, true);
});

test(`at most ${MAX_API_SOCKETS} pages at once: the next upgrade is refused with 503 until one closes`, BOUNDED, async (t) => {
  const { server } = await startServer(t);
  const cookie = await logIn(server);
  const open: WebSocket[] = [];
  for (let i = 0; i < MAX_API_SOCKETS; i++) open.push(await pageSocket(t, server, cookie));
  const refused = await upgradeRefusal(server, { origin: server.origin, cookie });
  assert.equal(refused.status, 503);
  const first = open[0];
  assert.ok(first);
  const gone = closeCode(first);
  first.close();
  await gone;
  // The server counts the socket closed once its own side has seen the close: a retry may need a moment.
  for (;;) {
    const ws = socketTo(server, { origin: server.origin, cookie });
    t.after(() => ws.terminate());
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('unexpected-response', () => resolve(false));
    });
    if (opened) break;
  }
});

test('a page that stops answering pings is dropped; one that answers stays', BOUNDED, async (t) => {
  // Long enough that a busy machine still reads the healthy page's pong before the next tick (server and pages share this process).
  const { server, log } = await startServer(t, { heartbeatMs: 250 });
  const cookie = await logIn(server);
  const healthy = await pageSocket(t, server, cookie);
  const silent = await pageSocket(t, server, cookie, { autoPong: false });
  assert.equal(await closeCode(silent), 1006, 'terminated, no close handshake');
  assert.equal(healthy.readyState, WebSocket.OPEN, 'the page that answers pings is still connected');
  assert.equal((await call(healthy, JSON.stringify({ id: 1, method: 'bundle' }))).ok, true);
  assert.ok(log.lines.includes('info dropped a diagnostics page that stopped answering pings'));
});

test('path traversal and unlisted paths are 404 even with the session; other methods 405', BOUNDED, async (t) => {
  const { server } = await startServer(t);
  const cookie = await logIn(server);
  for (const unlisted of ['/../package.json', '/%2e%2e/', '/%2e%2e/package.json', '/..%2fpackage.json', '//styles.css', '/styles.css/', '/index.html', '/main.ts', '/favicon.ico', '/api']) {
    const reply = await request(server, unlisted, { headers: { Cookie: cookie } });
    assert.equal(reply.status, 404, unlisted);
    assert.equal(reply.body, 'Not found.\n');
  }
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const reply = await request(server, '/', { method, headers: { Cookie: cookie } });
    assert.equal(reply.status, 405, method);
    assert.equal(reply.headers.allow, 'GET, HEAD');
  }
  const token = new URL(server.url).searchParams.get('token');
  assert.equal((await request(server, `/?token=${token}`, { method: 'POST' })).status, 405);
});

test('refusals are logged without the token or the session cookie', BOUNDED, async (t) => {
  const { server, log } = await startServer(t);
  const token = new URL(server.url).searchParams.get('token') ?? '';
  const cookie = await logIn(server);
  await request(server, `/?token=${token}`);
  await request(server, `/?token=${token}`, { headers: { Host: 'evil.example' } });
  await upgradeRefusal(server, { origin: 'http://evil.example', cookie });
  await upgradeRefusal(server, { origin: server.origin, cookie: `${cookie}x` });
  assert.ok(log.lines.length >= 5, log.lines.join('\n'));
  const session = cookie.split('=')[1] ?? '';
  for (const line of log.lines) {
    assert.ok(!line.includes(token), `the token is in: ${line}`);
    assert.ok(!line.includes(session), `the session is in: ${line}`);
  }
});

test('only loopback addresses are served; a port in use and a missing page are said before any URL', BOUNDED, async (t) => {
  for (const host of ['0.0.0.0', '::', '192.0.2.10', 'localhost', 'evil.example']) {
    await assert.rejects(
      DiagnosticsWebServer.start({ api: new StandInAgent(), pageDir: PAGE_DIR, log: memoryLogger(), host }),
      (error) => isOutpostError(error, ErrorCode.USAGE) && error.message.includes(`${host} is not a loopback address`),
      host,
    );
  }
  const { server } = await startServer(t, { host: '::1' });
  assert.match(server.origin, /^http:\/\/\[::1\]:\d+$/);
  assert.equal((await request(server, '/')).status, 403, 'served on ::1, Host [::1]:<port> is this server');

  const { server: first } = await startServer(t);
  const port = Number(new URL(first.origin).port);
  await assert.rejects(DiagnosticsWebServer.start({ api: new StandInAgent(), pageDir: PAGE_DIR, log: memoryLogger(), port }), (error) => isOutpostError(error, ErrorCode.NOT_AVAILABLE) && /EADDRINUSE/.test(error.message));

  const empty = tempDir(t);
  await assert.rejects(
    DiagnosticsWebServer.start({ api: new StandInAgent(), pageDir: empty, log: memoryLogger() }),
    (error) => isOutpostError(error, ErrorCode.NOT_AVAILABLE) && error.message.includes(path.join(empty, 'index.html')),
  );
});

test('close() ends every connection: the page socket sees it, nothing listens any more, and a second close() is fine', BOUNDED, async (t) => {
  const { server } = await startServer(t);
  const cookie = await logIn(server);
  const ws = await pageSocket(t, server, cookie);
  const closed = closeCode(ws);
  await server.close();
  assert.equal(await closed, 1006);
  await server.close();
  const { port } = new URL(server.origin);
  await assert.rejects(
    new Promise((resolve, reject) => net.connect(Number(port), '127.0.0.1').once('connect', resolve).once('error', reject)),
    (error) => (error as NodeJS.ErrnoException).code === 'ECONNREFUSED',
  );
});

test('after close() a process that used the server (a page, its socket, keep-alive connections) exits by itself', BOUNDED, async () => {
  const module = pathToFileURL(path.join(DIST, 'app', 'main', 'core', 'diagnostics', 'web-server.js')).href;
  // The child keeps a keep-alive connection and a page socket open, then closes the server and
  // lets the event loop run dry: it exits only if close() left nothing behind.
  const script = `
    import http from 'node:http';
    import { WebSocket } from 'ws';
    import { DiagnosticsWebServer } from ${JSON.stringify(module)};
    const quiet = { error() {}, warn() {}, info() {}, debug() {}, child() { return quiet; } };
    const api = { read: async () => ({}), checkNow: async () => ({ ok: true, message: '' }), openLogFolder: async () => ({ ok: true, message: '' }), bundle: async () => ({ file_name: 'b', text: '' }) };
    const server = await DiagnosticsWebServer.start({ api, pageDir: ${JSON.stringify(PAGE_DIR)}, log: quiet });
    const agent = new http.Agent({ keepAlive: true });
    const get = (path, headers = {}) => new Promise((resolve, reject) => http.get(server.origin + path, { agent, headers }, (res) => { res.resume(); res.on('end', () => resolve(res)); }).on('error', reject));
    const cookie = (await get(new URL(server.url).pathname + new URL(server.url).search)).headers['set-cookie'][0].split(';')[0];
    await get('/', { Cookie: cookie });
    const ws = new WebSocket(server.origin.replace('http:', 'ws:') + '/api', { origin: server.origin, headers: { Cookie: cookie } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.on('close', () => console.log('socket closed'));
    await server.close();
    console.log('server closed');
  `;
  const child = new Child(process.execPath, ['--input-type=module', '-e', script], process.env, DIST);
  // Within BOUNDED, so that a child that does not exit is reported as such.
  const hang = setTimeout(() => child.process.kill('SIGKILL'), 20_000);
  const finished = await child.exited;
  clearTimeout(hang);
  assert.equal(finished.signal, null, `the process did not exit by itself: ${finished.stdout}${finished.stderr}`);
  assert.equal(finished.code, 0, finished.stderr);
  assert.match(finished.stdout, /server closed/);
  assert.match(finished.stdout, /socket closed/);
});
