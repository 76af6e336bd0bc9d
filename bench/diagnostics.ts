import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { RUNNING_LINE } from '../app/common/cli-output.js';
import { launchChromium } from '../test/helpers/browser.js';
import { type Benchmark, cpuMs, type Figure, median, rssMb, startUntil, stop } from './measure.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'outpost.js');
const URL_LINE = /^http:\/\/127\.0\.0\.1:\d+\/\?token=\S+$/m;

/** A page of the same Chromium with nothing in it, served on loopback: what any page costs. */
async function blankServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => res.end('<!doctype html><title>blank</title><p>blank</p>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Request to first paint with the agent's data in it (the page marks it), and the JS heap once it is there. */
async function openPage(browser: Browser, url: string, live: boolean): Promise<{ ms: number; heapMb: number; page: Page }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const t0 = performance.now();
  await page.goto(url);
  if (live) await page.waitForSelector('body[data-ready="true"]');
  else await page.waitForLoadState('load');
  // Two animation frames: the frame with the data has been painted (this file is compiled without DOM types).
  await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');
  const ms = performance.now() - t0;
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const { metrics } = await cdp.send('Performance.getMetrics');
  const heap = metrics.find((metric) => metric.name === 'JSHeapUsedSize')?.value ?? Number.NaN;
  return { ms, heapMb: heap / 1024 / 1024, page };
}

/** The agent's CPU (ms) and RSS (MB) over a window. */
async function watch(pid: number, windowS: number): Promise<{ cpu: number; rss: number }> {
  const cpu0 = cpuMs(pid);
  await sleep(windowS * 1_000);
  return { cpu: cpuMs(pid) - cpu0, rss: rssMb(pid) };
}

/**
 * The diagnostics window, as the page in Debian's Chromium through `outpost diagnostics`: request to
 * first paint with live data and the page's memory, against a blank page of the same browser; then the
 * agent's idle CPU and RSS with no page at all, with the page open (it reads once a second), and with
 * it closed again (closed must cost what no page costs).
 */
export const diagnosticsPage: Benchmark = {
  name: 'diagnostics page',
  async run({ quick, log }) {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-'));
    const env = { ...process.env, OUTPOST_HOME: home };
    const windowS = quick ? 5 : 30;
    const rounds = quick ? 3 : 10;
    let agent: ChildProcess | undefined;
    let served: ChildProcess | undefined;
    let browser: Browser | undefined;
    const blank = await blankServer();
    try {
      agent = (await startUntil(process.execPath, [BIN], env, RUNNING_LINE)).child;
      const pid = agent.pid as number;
      await sleep(2_000);
      log(`agent idle with no page: watching for ${windowS} s...`);
      const never = await watch(pid, windowS);

      browser = await launchChromium();
      const pageMs: number[] = [];
      const blankMs: number[] = [];
      let heap = { page: 0, blank: 0 };
      for (let i = 0; i < rounds; i++) {
        // A one-time link each time: a fresh `outpost diagnostics`, as an admin would run it.
        const started = await startUntil(process.execPath, [BIN, 'diagnostics'], env, URL_LINE);
        const url = URL_LINE.exec(started.output)?.[0] as string;
        const empty = await openPage(browser, blank.url, false);
        blankMs.push(empty.ms);
        const live = await openPage(browser, url, true);
        pageMs.push(live.ms);
        heap = { page: live.heapMb, blank: empty.heapMb };
        await empty.page.close();
        if (i < rounds - 1) {
          await live.page.close();
          await stop(started.child);
        } else served = started.child;
      }
      log(`first paint with live data: ${rounds} rounds; blank page median ${median(blankMs).toFixed(0)} ms, diagnostics median ${median(pageMs).toFixed(0)} ms`);
      log(`agent with the page open: watching for ${windowS} s...`);
      const open = await watch(pid, windowS);
      await browser.close();
      browser = undefined;
      if (served) await stop(served);
      served = undefined;
      await sleep(2_000);
      log(`agent after the page closed: watching for ${windowS} s...`);
      const closed = await watch(pid, windowS);

      const figures: Figure[] = [
        { name: 'diagnostics: request to first paint with live data', unit: 'ms', value: median(pageMs), baseline: median(blankMs), baselineName: 'blank page, same browser', goal: 'under 1 s: it opens fast', met: median(pageMs) < 1_000 },
        { name: 'diagnostics: page JS heap', unit: 'MB', value: heap.page, baseline: heap.blank, baselineName: 'blank page', goal: 'at most +5 MB', met: heap.page - heap.blank <= 5 },
        { name: `agent CPU over ${windowS} s, page open`, unit: 'ms', value: open.cpu, baseline: never.cpu, baselineName: 'no page at all', goal: 'at most 1% of the window', met: open.cpu <= windowS * 1_000 * 0.01 },
        { name: `agent CPU over ${windowS} s, page closed`, unit: 'ms', value: closed.cpu, baseline: never.cpu, baselineName: 'no page at all', goal: 'within 0.1% of the window of no page', met: Math.abs(closed.cpu - never.cpu) <= windowS * 1_000 * 0.001 },
        { name: 'agent RSS, page open', unit: 'MB', value: open.rss, baseline: never.rss, baselineName: 'no page at all', goal: 'at most +10 MB', met: open.rss - never.rss <= 10 },
        { name: 'agent RSS, page closed', unit: 'MB', value: closed.rss, baseline: never.rss, baselineName: 'no page at all', goal: 'at most +10 MB (the heap may keep what it grew)', met: closed.rss - never.rss <= 10 },
      ];
      return figures;
    } finally {
      await browser?.close();
      if (served) await stop(served);
      if (agent) await stop(agent);
      await blank.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  },
};
