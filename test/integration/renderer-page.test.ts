/**
 * The diagnostics page (app/renderer, as built into dist/) in Debian's Chromium, over both carriers:
 * - the desktop app's: `window.outpostDiagnostics` defined before the page runs, handing each call as
 *   an ApiCall to a scripted agent in this process and unwrapping the ApiResult, as the preload does;
 * - the headless one: a WebSocket at DIAGNOSTICS_WS_PATH answering ApiCall with ApiResult.
 * Both ends run the product's own dispatchApiCall, so the page meets the same answers and refusals
 * as from the real agent. The page is served with DIAGNOSTICS_CSP, and any violation fails the test.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import axe from 'axe-core';
import type { Browser, Page } from 'playwright-core';
import { type WebSocket, WebSocketServer } from 'ws';
import { ErrorCode, OutpostError } from '../../app/base/errors.js';
import {
  type ActionResult,
  API_MAX_CALL_BYTES,
  ApiCall,
  type ApiMethod,
  DIAGNOSTICS_CSP,
  DIAGNOSTICS_GLOBAL,
  DIAGNOSTICS_WS_PATH,
  type DiagnosticsApi,
  type DiagnosticsBundle,
  type DiagnosticsView,
  LOG_TAIL_LINES,
  type LogLine,
  type ReadParams,
} from '../../app/common/diagnostics.js';
import type { LogLevel } from '../../app/common/log-levels.js';
import { dispatchApiCall } from '../../app/main/core/diagnostics/api-dispatch.js';
import { chromiumOrSkip } from '../helpers/browser.js';
import { DIST, REPO_ROOT } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

const PAGE_DIR = path.join(DIST, 'app', 'renderer');
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'diagnostics');
const FIRST_DATA_MARK = 'outpost:first-data';

/** What a view says, less what each read makes afresh (its time and its log lines). */
type Stage = Omit<DiagnosticsView, 'at' | 'log'>;

/** An agent as the page sees it: the test sets its stage and writes its log; every call is recorded. */
class ScriptedAgent implements DiagnosticsApi {
  readonly calls: ApiMethod[] = [];
  readonly bundleMade: DiagnosticsBundle = { file_name: 'outpost-diagnostics-test.txt', text: 'state: IDLE\nconfig: {"feed": "https://updates.example"}\n' };
  stage: Stage;
  /** Answer as a carrier whose agent is gone (ERR_DIAGNOSTICS_NO_AGENT). */
  gone = false;
  readonly #lines: LogLine[] = [];
  #reads = 0;

  constructor(stage: Stage) {
    this.stage = stage;
  }

  log(level: LogLevel, text: string): void {
    this.#lines.push({ at: new Date().toISOString(), level, text });
  }

  get reads(): number {
    return this.calls.filter((call) => call === 'read').length;
  }

  async read({ log_after }: ReadParams): Promise<DiagnosticsView> {
    this.calls.push('read');
    if (this.gone) throw new OutpostError(ErrorCode.DIAGNOSTICS_NO_AGENT, 'no agent is running for /home/admin/.local/share/outpost');
    // A live agent writes as it goes: each read finds a line the previous one did not.
    this.log('debug', `heartbeat ${++this.#reads}`);
    // At most LOG_TAIL_LINES a read: what was written before them is skipped, and the view says so.
    const from = Math.max(log_after?.offset ?? 0, this.#lines.length - LOG_TAIL_LINES);
    return {
      ...this.stage,
      at: new Date().toISOString(),
      log: { cursor: { file: 'outpost.log', offset: this.#lines.length }, lines: this.#lines.slice(from), truncated: from > (log_after?.offset ?? 0) },
    };
  }

  async checkNow(): Promise<ActionResult> {
    this.calls.push('check_now');
    return { ok: true, message: 'Update check started: 0.2.0 is on the stable channel.' };
  }

  async openLogFolder(): Promise<ActionResult> {
    this.calls.push('open_log_folder');
    return { ok: true, message: 'Opened the log folder.' };
  }

  async bundle(): Promise<DiagnosticsBundle> {
    this.calls.push('bundle');
    return this.bundleMade;
  }
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function ago(ms: number): string {
  return new Date(Date.now() - ms).toISOString();
}

function idle(shell: 'electron' | 'headless'): Stage {
  return {
    agent: {
      state: 'IDLE',
      state_since: ago(42 * MINUTE),
      version: '0.1.0',
      pid: 4242,
      uptime_s: 3 * 3600 + 12 * 60,
      storage: '/home/admin/.local/share/outpost',
      logs: '/home/admin/.local/share/outpost/logs',
      shell,
    },
    lock: { pid: 4242, version: '0.1.0', acquired_at: ago(3 * HOUR + 12 * MINUTE), heartbeat_at: ago(2_000) },
    update: {
      enabled: true,
      channel: 'stable',
      last_check: ago(95_000),
      last_result: { ok: true, message: 'Up to date: 0.1.0 is the latest on stable.' },
      offered: null,
      staged: null,
      last_error: null,
      last_download: { version: '0.1.0', downloaded_bytes: 131_072, release_bytes: 208_146_332 },
      progress: null,
      held_back: [{ version: '0.1.5', rollbacks: 2, last: ago(26 * HOUR) }],
      last_job: {
        job_id: 'job-7f3a9c',
        from: '0.0.9',
        to: '0.1.0',
        outcome: 'committed',
        reason: null,
        phases: [
          { step: 'wait_old_exit', result: 'ok', began_at: ago(3 * HOUR + 13 * MINUTE), ms: 840, detail: null },
          { step: 'backup', result: 'ok', began_at: ago(3 * HOUR + 13 * MINUTE), ms: 1_240, detail: null },
          { step: 'swap', result: 'ok', began_at: ago(3 * HOUR + 13 * MINUTE), ms: 310, detail: null },
          { step: 'launch', result: 'ok', began_at: ago(3 * HOUR + 13 * MINUTE), ms: 2_600, detail: 'pid 4242' },
          { step: 'health', result: 'ok', began_at: ago(3 * HOUR + 12 * MINUTE), ms: 185_000, detail: null },
          { step: 'commit', result: 'ok', began_at: ago(3 * HOUR + 9 * MINUTE), ms: 45, detail: null },
        ],
      },
    },
    reports: { queued: 2 },
  };
}

const MB = 1024 * 1024;

function downloading(shell: 'electron' | 'headless'): Stage {
  const base = idle(shell);
  return {
    ...base,
    agent: { ...base.agent, state: 'UPDATING_DOWNLOADING', state_since: ago(6_000) },
    update: { ...base.update, last_check: ago(7_000), last_result: { ok: true, message: '0.2.0 offered' }, offered: '0.2.0', progress: { bytes: 12.5 * MB, total: 40 * MB, percent: 31.25, bytes_per_s: 2.1 * MB } },
  };
}

/** The renderer's files over loopback with the page's CSP, and (when given an agent) the headless carrier's socket. */
class PageServer {
  readonly #http: http.Server;
  readonly #sockets = new WebSocketServer({ noServer: true, maxPayload: API_MAX_CALL_BYTES });
  /** Every call the page sent over the socket, as ApiCall checks it. */
  readonly calls: ApiCall[] = [];
  #accepting = true;

  private constructor(agent: DiagnosticsApi | null) {
    this.#http = http.createServer((request, response) => this.#serve(request, response));
    this.#http.on('upgrade', (request, socket, head) => {
      if (!agent || !this.#accepting || request.url !== DIAGNOSTICS_WS_PATH) return socket.destroy();
      this.#sockets.handleUpgrade(request, socket, head, (ws) => this.#answer(ws, agent));
    });
  }

  static async start(t: TestContext, agent: DiagnosticsApi | null = null): Promise<PageServer> {
    const server = new PageServer(agent);
    await new Promise<void>((resolve) => server.#http.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    return server;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.#http.address() as AddressInfo).port}`;
  }

  /** Drops every page's socket and refuses new ones, as when `outpost diagnostics` is stopped. */
  drop(): void {
    this.#accepting = false;
    for (const client of this.#sockets.clients) client.terminate();
  }

  restore(): void {
    this.#accepting = true;
  }

  close(): Promise<void> {
    for (const client of this.#sockets.clients) client.terminate();
    this.#sockets.close();
    this.#http.closeAllConnections();
    return new Promise((resolve) => this.#http.close(() => resolve()));
  }

  #answer(ws: WebSocket, agent: DiagnosticsApi): void {
    ws.on('message', async (data) => {
      const message = data.toString();
      this.calls.push(ApiCall.parse(JSON.parse(message)));
      ws.send(JSON.stringify(await dispatchApiCall(message, agent)));
    });
  }

  #serve(request: http.IncomingMessage, response: http.ServerResponse): void {
    const files: Readonly<Record<string, string>> = { '/': 'index.html', '/styles.css': 'styles.css', '/diagnostics.js': 'diagnostics.js' };
    const file = files[request.url ?? ''];
    if (!file) return void response.writeHead(404).end();
    const type = { html: 'text/html', css: 'text/css', js: 'text/javascript' }[file.split('.').pop() as 'html' | 'css' | 'js'];
    response.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'content-security-policy': DIAGNOSTICS_CSP, 'cache-control': 'no-store' });
    response.end(fs.readFileSync(path.join(PAGE_DIR, file)));
  }
}

/** The little of a browser's globals the init scripts use (this project's tests have no DOM types). */
interface InitGlobals {
  addEventListener(type: "securitypolicyviolation", listener: (event: { violatedDirective: string; blockedURI: string; sourceFile: string; lineNumber: number; columnNumber: number }) => void): void;
}

/** Reports every CSP violation to the test (runs in the page, before its scripts). */
function reportCspViolations(binding: string): void {
  const report = Reflect.get(globalThis, binding) as (text: string) => void;
  (globalThis as unknown as InitGlobals).addEventListener('securitypolicyviolation', (event) => report(`${event.violatedDirective} blocked ${event.blockedURI} at ${event.sourceFile}:${event.lineNumber}:${event.columnNumber}`));
}

/** What the preload does (runs in the page): each method one ApiCall to the agent, its ApiResult unwrapped. */
function installBridge(names: { readonly global: string; readonly binding: string }): void {
  const send = Reflect.get(globalThis, names.binding) as (message: string) => Promise<string>;
  let id = 0;
  const call = async (method: string, params?: unknown): Promise<unknown> => {
    id++;
    const result = JSON.parse(await send(JSON.stringify(params === undefined ? { id, method } : { id, method, params })));
    if (!result.ok) throw Object.assign(new Error(result.error.message), { code: result.error.code });
    return result.result;
  };
  const api = { read: (params: unknown) => call('read', params), checkNow: () => call('check_now'), openLogFolder: () => call('open_log_folder'), bundle: () => call('bundle') };
  Object.defineProperty(globalThis, names.global, { value: Object.freeze(api) });
}

interface Opened {
  readonly page: Page;
  /** CSP violations and uncaught page errors, as they happen: each test ends asserting none. */
  readonly problems: string[];
}

/** The page served by `server`, in a fresh context; with `bridge`, as the desktop app shows it. */
async function openPage(t: TestContext, browser: Browser, server: PageServer, bridge: ScriptedAgent | null, viewport = { width: 1280, height: 800 }): Promise<Opened> {
  const context = await browser.newContext({ viewport, locale: 'en-US', colorScheme: 'light', acceptDownloads: true });
  t.after(() => context.close());
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.origin });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.exposeFunction('__outpostCspViolation', (text: string) => problems.push(`CSP: ${text}`));
  await page.addInitScript(reportCspViolations, '__outpostCspViolation');
  if (bridge) {
    await page.exposeFunction('__outpostAgentCall', async (message: string) => JSON.stringify(await dispatchApiCall(message, bridge)));
    await page.addInitScript(installBridge, { global: DIAGNOSTICS_GLOBAL, binding: '__outpostAgentCall' });
  }
  await page.goto(`${server.origin}/`);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, problems };
}

/** What has keyboard focus, named as a user would find it. */
function focused(page: Page): Promise<string> {
  return page.evaluate<string>("(() => { const e = document.activeElement; return e.getAttribute('aria-label') || e.labels?.[0]?.textContent || e.textContent.trim(); })()");
}

interface LogScroll {
  readonly top: number;
  readonly height: number;
  readonly client: number;
}

function logScroll(page: Page): Promise<LogScroll> {
  return page.evaluate<LogScroll>("(() => { const b = document.querySelector('.log'); return { top: b.scrollTop, height: b.scrollHeight, client: b.clientHeight }; })()");
}

const atEnd = (scroll: LogScroll) => scroll.height - scroll.top - scroll.client <= 4;

async function text(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).textContent()) ?? '';
}

test('the desktop carrier: the view, live log lines and their filter, progress, and every action by keyboard alone', async (t) => {
  const browser = await chromiumOrSkip(t);
  if (!browser) return;
  const agent = new ScriptedAgent(idle('electron'));
  agent.log('info', 'agent 0.1.0 started (pid 4242)');
  agent.log('info', 'update check: up to date');
  const server = await PageServer.start(t);
  const { page, problems } = await openPage(t, browser, server, agent);

  const metaCsp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
  assert.equal(metaCsp, DIAGNOSTICS_CSP.replace("; frame-ancestors 'none'", ''), 'the page carries the CSP itself (frame-ancestors only works as a header)');
  assert.equal(await page.getAttribute('body', 'data-state'), 'IDLE');
  assert.equal(await page.evaluate<number>(`performance.getEntriesByName('${FIRST_DATA_MARK}').length`), 1, 'the first view is marked for the benchmark');
  assert.equal(await text(page, '.badge'), 'Idle');
  assert.equal(await text(page, '.pill'), 'Live');
  const agentCard = await text(page, '#agent');
  for (const fact of ['IDLE since', '42 min ago', '0.1.0', '4242', '3 h 12 min', 'Desktop app', '/home/admin/.local/share/outpost/logs', '2 waiting to be sent']) {
    assert.ok(agentCard.includes(fact), `the agent card shows ${fact}: ${agentCard}`);
  }
  const lockCard = await text(page, '#lock');
  assert.match(lockCard, /pid 4242 \(this agent\)/);
  assert.match(lockCard, /Last heartbeat\d{1,2}:\d\d:\d\d [AP]M \(\d s ago\)/);
  const updates = await text(page, '#updates');
  for (const fact of ['On, channel stable', '1 min ago', 'Up to date: 0.1.0 is the latest on stable.', '0.1.5: 2 rollbacks, last']) assert.ok(updates.includes(fact), `the update card shows ${fact}: ${updates}`);
  assert.match(await text(page, '#download'), /No download under way\. Last update, 0\.1\.0: downloaded 128\.0 KB of its 198\.5 MB \(0\.06 %\)\./);
  assert.match(await text(page, '.job-summary'), /0\.0\.9 → 0\.1\.0 · committed · job job-7f3a9c/);
  const phases = await page.locator('.phases tbody tr').allTextContents();
  assert.equal(phases.length, 6);
  assert.match(phases[1] ?? '', /^backup.*ok.*1\.2 s/);
  assert.match(phases[4] ?? '', /^health.*ok.*3 min 5 s/);
  assert.match(phases[5] ?? '', /^commit.*ok.*45 ms/);
  await page.locator('.log .line', { hasText: 'agent 0.1.0 started' }).waitFor();

  // The agent starts downloading and writes lines of every level, one of them hostile markup.
  agent.stage = downloading('electron');
  agent.log('info', 'downloading 0.2.0 (40 MB)');
  agent.log('warn', 'disk space low: 900 MB free');
  agent.log('error', 'report upload failed: ECONNRESET');
  agent.log('info', '<img src=x onerror="alert(1)"> from a hostile feed');
  await page.waitForSelector('body[data-state="UPDATING_DOWNLOADING"]');
  assert.equal(await text(page, '.badge'), 'Downloading an update');
  assert.equal(await page.getAttribute('#download progress', 'value'), '31.25');
  assert.equal(await text(page, '.download-words'), '31 % · 12.5 MB of 40.0 MB · 2.1 MB/s');
  await page.locator('.log .line', { hasText: 'report upload failed' }).waitFor();
  assert.equal(await page.locator('.log img').count(), 0, 'a log line is text, never markup');
  assert.equal(await page.locator('.log .line', { hasText: '<img src=x onerror="alert(1)">' }).count(), 1);

  const line = (words: string | RegExp) => page.locator('.log .line', { hasText: words });
  const shown = async () => ({
    debug: await line('heartbeat 1').isVisible(),
    info: await line('downloading 0.2.0').isVisible(),
    warn: await line('disk space low').isVisible(),
    error: await line('report upload failed').isVisible(),
  });
  assert.deepEqual(await shown(), { debug: true, info: true, warn: true, error: true }, 'everything is shown at first');
  await page.selectOption('#log-level', 'warn');
  assert.deepEqual(await shown(), { debug: false, info: false, warn: true, error: true });
  await page.selectOption('#log-level', 'error');
  assert.deepEqual(await shown(), { debug: false, info: false, warn: false, error: true });
  await page.selectOption('#log-level', 'info');
  assert.deepEqual(await shown(), { debug: false, info: true, warn: true, error: true });
  await page.selectOption('#log-level', 'debug');
  assert.deepEqual(await shown(), { debug: true, info: true, warn: true, error: true });

  // It follows new lines while at the end, keeps no more than 500 lines, and never yanks a reader who scrolled up.
  // Two batches, each (with the read's own heartbeat) within what one read brings.
  for (let n = 1; n <= 290; n++) agent.log('info', `bulk line ${n}`);
  await line('bulk line 290').waitFor();
  for (let n = 291; n <= 580; n++) agent.log('info', `bulk line ${n}`);
  await line('bulk line 580').waitFor();
  assert.equal(await page.locator('.log .line').count(), 500, 'the page keeps the latest 500 lines');
  assert.equal(await line(/bulk line 50$/).count(), 0, 'the oldest lines went');
  assert.equal(await line('lines skipped').count(), 0, 'no line was skipped so far');
  assert.ok(atEnd(await logScroll(page)), 'the log followed the new lines');
  for (let n = 1; n <= LOG_TAIL_LINES + 20; n++) agent.log('info', `flood line ${n}`);
  await line(`flood line ${LOG_TAIL_LINES + 20}`).waitFor();
  assert.equal(await line(/flood line 20$/).count(), 0, 'a read brings at most LOG_TAIL_LINES');
  assert.equal(await line('lines skipped').count(), 1, 'the page says where it skipped lines');

  // Keyboard only, from the top: each action in order, then the filter, then the log itself.
  await page.locator('body').focus();
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'Check for updates now');
  assert.equal(await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle'), 'solid', 'the focus ring shows');
  await page.keyboard.press('Enter');
  await page.getByText('Update check started: 0.2.0 is on the stable channel.').waitFor();
  assert.equal(await focused(page), 'Check for updates now', 'focus stays on the button it pressed');
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'Open log folder');
  await page.keyboard.press('Enter');
  await page.getByText('Opened the log folder.').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'Diagnostics bundle');
  await page.keyboard.press('Enter');
  await page.getByText(/Bundle ready \(outpost-diagnostics-test\.txt, \d+ B\): copy it or save it\./).waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'Copy');
  await page.keyboard.press('Enter');
  await page.getByText('The bundle is on the clipboard').waitFor();
  assert.equal(await page.evaluate<string>('navigator.clipboard.readText()'), agent.bundleMade.text);
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'Save');
  const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
  assert.equal(download.suggestedFilename(), agent.bundleMade.file_name);
  assert.equal(fs.readFileSync(await download.path(), 'utf8'), agent.bundleMade.text);
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'Show');
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'Agent log, newest last');
  await page.keyboard.press('Home');
  await until('the log scrolled to its top by keyboard', async () => (await logScroll(page)).top === 0);
  await page.locator('button', { hasText: 'Jump to newest' }).waitFor();
  const scrolledUp = await logScroll(page);
  agent.log('warn', 'a line written while the reader is scrolled up');
  await line('a line written while the reader is scrolled up').waitFor({ state: 'attached' });
  assert.equal((await logScroll(page)).top, scrolledUp.top, 'the reader stays where they scrolled');
  await page.locator('button', { hasText: 'Jump to newest' }).click();
  assert.ok(atEnd(await logScroll(page)), 'jumping to the newest follows again');

  assert.deepEqual(
    agent.calls.filter((call) => call !== 'read'),
    ['check_now', 'open_log_folder', 'bundle'],
  );
  assert.deepEqual(problems, []);
});

test('axe-core finds no violation, light and dark, at 1280x800 and 640x480; the screenshots are saved', async (t) => {
  const browser = await chromiumOrSkip(t);
  if (!browser) return;
  const agent = new ScriptedAgent(downloading('electron'));
  for (const [level, words] of [
    ['info', 'agent 0.1.0 started (pid 4242)'],
    ['info', 'update check: 0.2.0 offered on stable'],
    ['info', 'downloading 0.2.0 (40.0 MB) from https://updates.example/stable/0.2.0'],
    ['warn', 'download stalled for 12 s; resuming from byte 9437184'],
    ['error', 'report upload failed: ECONNRESET (will retry in 60 s)'],
    ['info', 'download resumed at 2.1 MB/s'],
  ] as const) {
    agent.log(level, words);
  }
  const server = await PageServer.start(t);
  const { page, problems } = await openPage(t, browser, server, agent);
  await page.locator('.log .line', { hasText: 'heartbeat 2' }).waitFor();
  // The action's outcome and the bundle's offer are on the page too, for axe to check them.
  await page.locator('button', { hasText: 'Diagnostics bundle' }).click();
  await page.locator('button', { hasText: 'Save' }).waitFor();
  await page.mouse.move(0, 0);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.evaluate(axe.source);
  const sizes = [
    { width: 1280, height: 800 },
    { width: 640, height: 480 },
  ];
  for (const viewport of sizes) {
    for (const colorScheme of ['light', 'dark'] as const) {
      await page.setViewportSize(viewport);
      await page.emulateMedia({ colorScheme });
      // Runs in the page, where `axe` is the copy injected above (the import gives its types and its source).
      const violations = await page.evaluate(async () =>
        (await axe.run()).violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
      );
      assert.deepEqual(violations, [], `${viewport.width}x${viewport.height} ${colorScheme}`);
      if (viewport.width === 1280 || colorScheme === 'light') {
        await page.screenshot({ path: path.join(ARTIFACTS, `diagnostics-${viewport.width}x${viewport.height}-${colorScheme}.png`) });
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('the headless carrier: the view over the WebSocket; "reconnecting" when it drops, "agent not running" when the agent is gone, and back', async (t) => {
  const browser = await chromiumOrSkip(t);
  if (!browser) return;
  const agent = new ScriptedAgent(idle('headless'));
  agent.log('info', 'agent 0.1.0 started (pid 4242)');
  const server = await PageServer.start(t, agent);
  const { page, problems } = await openPage(t, browser, server, null);

  assert.equal(await page.getAttribute('body', 'data-state'), 'IDLE');
  assert.match(await text(page, '#agent'), /Headless \(outpost command\)/);
  assert.equal(await page.locator('button', { hasText: 'Open log folder' }).isVisible(), false, 'a headless agent cannot open a folder on the desktop');
  await page.locator('.log .line', { hasText: 'agent 0.1.0 started' }).waitFor();

  server.drop();
  await page.waitForSelector('body[data-connection="reconnecting"]');
  assert.equal(await text(page, '.pill'), 'Reconnecting');
  assert.equal(await text(page, '.badge'), 'Last seen: Idle', 'the state is old news while the page is away');
  assert.match(await text(page, '.banner'), /^Agent unreachable: the connection to outpost diagnostics dropped\. Reconnecting \(attempt \d\)…/);
  assert.match(await text(page, '#agent'), /IDLE since.*4242/, 'the last values stay on the page');
  agent.log('warn', 'written while the page was away');
  agent.stage = downloading('headless');
  server.restore();
  await page.waitForSelector('body[data-connection="live"]');
  await page.waitForSelector('body[data-state="UPDATING_DOWNLOADING"]');
  await page.locator('.log .line', { hasText: 'written while the page was away' }).waitFor();
  assert.equal(await page.locator('.log .line', { hasText: 'agent 0.1.0 started' }).count(), 1, 'the cursor went on where it was: no line twice');

  agent.gone = true;
  await page.waitForSelector('body[data-connection="no-agent"]');
  assert.equal(await text(page, '.pill'), 'Agent not running');
  assert.equal(await text(page, '.badge'), 'Not running');
  assert.match(await text(page, '.banner'), /^The agent is not running: no agent is running for \/home\/admin\/\.local\/share\/outpost\. This page keeps trying/);
  const readsWhileGone = agent.reads;
  await until('the page to keep reading while the agent is gone', () => agent.reads > readsWhileGone + 1);
  agent.gone = false;
  await page.waitForSelector('body[data-connection="live"]');
  assert.equal(await text(page, '.banner'), '', 'live again, the banner has nothing to say');

  const ids = server.calls.map((call) => call.id);
  assert.ok(
    ids.every((id, i) => i === 0 || id > (ids[i - 1] ?? 0)),
    `call ids increase across reconnections: ${ids.join(',')}`,
  );
  assert.deepEqual(server.calls[0], { id: 1, method: 'read', params: { log_after: null } }, 'the first read asks for the latest lines');
  assert.deepEqual(problems, []);
});
