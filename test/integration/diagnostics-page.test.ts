/**
 * The diagnostics page for real: Debian's Chromium, the page served by `outpost diagnostics`, a real
 * agent behind its IPC, and the real reference server publishing a release. The page must show what
 * the agent does as it does it (the check, the download's progress, the hand-off), follow it across
 * the update to the new version (whose page shows the update's phases from its journal), follow the
 * log as lines are written, start a check from its button (by mouse and by keyboard alone), and pass
 * an automated accessibility check. Screenshots are saved as test artifacts (and one is the README's).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import axe from 'axe-core';
import type { Page } from 'playwright-core';
import { logOf } from '../helpers/agent.js';
import { chromiumOrSkip } from '../helpers/browser.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { startOutpost, startRunningAgent } from '../helpers/processes.js';
import { ReleaseLab } from '../helpers/release-lab.js';
import { stopWhateverRuns, V1 } from '../helpers/update-lab.js';
import { until } from '../helpers/wait.js';

const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'diagnostics');
/** The one-time link `outpost diagnostics` prints. */
const LINK = /http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+/;
/** 1.1.0 adds one big, incompressible file: its download is long enough to be seen in progress. */
const BIG = randomBytes(2 * 1024 * 1024);

/** The page's text as a user sees it (laid out: a label and its value apart). */
function pageText(page: Page): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: Playwright's locator, not a DOM node; the laid-out text is the point
  return page.locator('body').innerText();
}

/** The text of what has keyboard focus (this file is compiled without DOM types: the page's code is a string). */
function focusedText(page: Page): Promise<string | undefined> {
  return page.evaluate<string | undefined>('document.activeElement?.textContent?.trim()');
}

async function axeViolations(page: Page): Promise<string[]> {
  // Runs in the page, where `axe` is the copy injected from the package (page.evaluate is not subject to the page's CSP).
  await page.evaluate(axe.source);
  return page.evaluate(async () => (await axe.run()).violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`));
}

test('the page of a real agent: a published release shows as the check, the download progress, then the new version with the phases of its update; the log follows; "check now" works by keyboard alone', async (t) => {
  const browser = await chromiumOrSkip(t);
  if (!browser) return;
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const proxy = await FaultProxy.start(lab.url);
  t.after(() => void proxy.close());
  // One run of 1.1.0's chunks stalls, for the stall limit, before it is asked for again: long
  // enough to see the download's progress on the page.
  proxy.once(/\/files\/.*\.zst/, { kind: 'stall', afterBytes: 100 });
  const home = lab.home({ url: proxy.url, wsUrl: `${lab.url.replace('http', 'ws')}/ws`, update: { stall_timeout_s: 4, hand_off: true } });
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  stopWhateverRuns(t, home, install);
  await until('the first check', () => logOf(home).includes('no update: 1.0.0 is the version'));

  const served = startOutpost(home, ['diagnostics'], { OUTPOST_INSTALL_DIR: install });
  t.after(() => served.kill('SIGKILL'));
  const [link] = await served.waitFor(LINK);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', colorScheme: 'light' });
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  await page.goto(link);
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(new URL(page.url()).search, '', 'the one-time token is gone from the address bar');
  assert.equal(await page.getAttribute('body', 'data-state'), 'IDLE');
  const first = await pageText(page);
  assert.match(first, /1\.0\.0/);
  assert.match(first, new RegExp(`${agent.pid}`), 'the agent pid');
  assert.match(first, /up to date/, 'the last check and its result');
  await page.locator('.log .line', { hasText: 'no update: 1.0.0 is the version' }).first().waitFor();

  lab.publish(lab.app('1.1.0', { ...V1, 'assets/big.bin': BIG }), '1.1.0');
  await page.waitForSelector('body[data-state="UPDATING_DOWNLOADING"]');
  await until('the download progress on the page', async () => /\d+ %.*of.*MB/.test(await pageText(page)));
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'live-downloading-1280x800.png') });
  await page.locator('.log .line', { hasText: 'update 1.0.0 -> 1.1.0' }).first().waitFor();

  // The stalled run is abandoned and asked for again (the page's log shows it); then the hand-off, and
  // the page, which reaches the agent only through `outpost diagnostics`, follows it to the new version.
  await page.locator('.log .line', { hasText: 'asking again' }).first().waitFor();
  const tail = () => `the agent's log ends: ${logOf(home).split('\n').slice(-15).join('\n')}`;
  await until('1.1.0 running, on the page', async () => /Version\s+1\.1\.0/.test(await pageText(page)), 90_000, tail);
  await page.waitForSelector('body[data-state="IDLE"]');
  assert.doesNotMatch(await pageText(page), new RegExp(`pid ${agent.pid}\\b`), 'another process now');
  await page.locator('.log .line', { hasText: 'Outpost 1.1.0 starting' }).first().waitFor();
  await until('the update committed, with its phases, on the page', async () => /1\.0\.0 → 1\.1\.0 · committed/.test(await pageText(page)), 60_000);
  const phases = await page.locator('.phases tbody tr > :first-child').allTextContents();
  assert.deepEqual(phases, ['wait_old_exit', 'backup', 'swap', 'launch', 'health', 'commit'], 'the journal\'s steps, in order');
  assert.match(await page.locator('.phases tbody').textContent() ?? '', /\d+ ms|\d+(\.\d+)? s/, 'with their durations');

  const checks = () => logOf(home).match(/update check \(request\)/g)?.length ?? 0;
  await page.locator('button', { hasText: 'Check for updates now' }).click();
  await until('the check the button asked for, in the agent log', () => checks() === 1);
  await page.locator('.log .line', { hasText: 'update check (request)' }).first().waitFor();

  // Keyboard alone: Tab from the top of the page to the button, Enter.
  await page.locator('body').focus();
  for (let tab = 0; tab < 10; tab++) {
    await page.keyboard.press('Tab');
    if ((await focusedText(page)) === 'Check for updates now') break;
  }
  assert.equal(await focusedText(page), 'Check for updates now', 'Tab reaches the button');
  await until('the check not running', async () => (await page.getAttribute('body', 'data-state')) === 'IDLE');
  await page.keyboard.press('Enter');
  await until('the check asked for by keyboard, in the agent log', () => checks() === 2);

  assert.deepEqual(await axeViolations(page), []);
  await page.screenshot({ path: path.join(ARTIFACTS, 'live-updated-1280x800.png'), fullPage: true });
  await page.setViewportSize({ width: 640, height: 480 });
  assert.deepEqual(await axeViolations(page), []);
  await page.screenshot({ path: path.join(ARTIFACTS, 'live-updated-640x480.png') });
  assert.deepEqual(problems, []);

  served.kill('SIGINT');
  assert.equal((await served.finish()).code, 0, '`outpost diagnostics` exits 0 after Ctrl+C');
});
