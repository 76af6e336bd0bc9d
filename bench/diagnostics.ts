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

/** `outpost diagnostics` for the agent of `env`, and its one-time link. */
async function serve(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const started = await startUntil(process.execPath, [BIN, 'diagnostics'], env, URL_LINE);
  return { child: started.child, url: URL_LINE.exec(started.output)?.[0] as string };
}

/** A fresh agent in a fresh storage folder; stopped and removed by `close`. */
async function freshAgent(): Promise<{ env: NodeJS.ProcessEnv; pid: number; close: () => Promise<void> }> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-'));
  const env = { ...process.env, OUTPOST_HOME: home };
  const { child } = await startUntil(process.execPath, [BIN], env, RUNNING_LINE);
  return {
    env,
    pid: child.pid as number,
    close: async () => {
      await stop(child);
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * The diagnostics window, as the page in Debian's Chromium through `outpost diagnostics`: request to
 * first paint with live data and the page's memory, against a blank page of the same browser. Then,
 * on a fresh agent (the rounds above leave garbage that V8 collects for a while), its idle CPU and
 * RSS with no page at all, with one page open (it reads once a second), and with it closed again
 * (closed must cost what no page costs).
 */
export const diagnosticsPage: Benchmark = {
  name: 'diagnostics page',
  async run({ quick, log }) {
    const windowS = quick ? 5 : 30;
    const rounds = quick ? 3 : 10;
    const browser = await launchChromium();
    const blank = await blankServer();
    const closers: Array<() => Promise<void>> = [() => browser.close(), blank.close];
    try {
      const first = await freshAgent();
      closers.push(first.close);
      const pageMs: number[] = [];
      const blankMs: number[] = [];
      let heap = { page: 0, blank: 0 };
      for (let i = 0; i < rounds; i++) {
        // A one-time link each time: a fresh `outpost diagnostics`, as an admin would run it.
        const served = await serve(first.env);
        const empty = await openPage(browser, blank.url, false);
        const live = await openPage(browser, served.url, true);
        blankMs.push(empty.ms);
        pageMs.push(live.ms);
        heap = { page: live.heapMb, blank: empty.heapMb };
        await Promise.all([empty.page.close(), live.page.close()]);
        await stop(served.child);
      }
      log(`first paint with live data: ${rounds} rounds; blank page median ${median(blankMs).toFixed(0)} ms, diagnostics median ${median(pageMs).toFixed(0)} ms`);

      const agent = await freshAgent();
      closers.push(agent.close);
      await sleep(2_000);
      log(`a fresh agent with no page: watching for ${windowS} s...`);
      const never = await watch(agent.pid, windowS);
      const served = await serve(agent.env);
      closers.push(() => stop(served.child));
      const live = await openPage(browser, served.url, true);
      log(`the same agent with the page open: watching for ${windowS} s...`);
      const open = await watch(agent.pid, windowS);
      await live.page.close();
      await stop(served.child);
      await sleep(2_000);
      log(`the same agent after the page closed: watching for ${windowS} s...`);
      const closed = await watch(agent.pid, windowS);

      const figures: Figure[] = [
        {
          name: 'diagnostics: request to first paint with live data',
          unit: 'ms',
          value: median(pageMs),
          baseline: median(blankMs),
          baselineName: 'blank page, same browser',
          goal: 'under 1 s: it opens fast',
          met: median(pageMs) < 1_000,
        },
        { name: 'diagnostics: page JS heap', unit: 'MB', value: heap.page, baseline: heap.blank, baselineName: 'blank page', goal: 'at most +5 MB', met: heap.page - heap.blank <= 5 },
        {
          name: `agent CPU over ${windowS} s, page open`,
          unit: 'ms',
          value: open.cpu,
          baseline: never.cpu,
          baselineName: 'no page at all',
          goal: 'at most 1% of the window',
          met: open.cpu <= windowS * 1_000 * 0.01,
        },
        {
          name: `agent CPU over ${windowS} s, page closed`,
          unit: 'ms',
          value: closed.cpu,
          baseline: never.cpu,
          baselineName: 'no page at all',
          goal: 'within 0.1% of the window of no page',
          met: Math.abs(closed.cpu - never.cpu) <= windowS * 1_000 * 0.001,
        },
        { name: 'agent RSS, page open', unit: 'MB', value: open.rss, baseline: never.rss, baselineName: 'no page at all', goal: 'at most +10 MB', met: open.rss - never.rss <= 10 },
        { name: 'agent RSS, page closed', unit: 'MB', value: closed.rss, baseline: never.rss, baselineName: 'no page at all', goal: 'at most +2 MB', met: closed.rss - never.rss <= 2 },
      ];
      return figures;
    } finally {
      for (const close of closers.reverse()) await close().catch(() => undefined);
    }
  },
};
