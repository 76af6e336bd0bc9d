import fs from 'node:fs';
import type { TestContext } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { tierUnavailable } from './tiers.js';

/** Debian's Chromium: `npx playwright install` cannot download a browser here. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags for a closed network (ENVIRONMENT.md): without them Chromium's own connections (updates,
 * sync, safe browsing) are refused many at a time. --no-sandbox because tests run as root in CI.
 */
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}

/** The browser tier's entry: Chromium, closed when the test ends, or the test skipped (failed under CI) saying why. */
export async function chromiumOrSkip(t: TestContext): Promise<Browser | null> {
  if (!fs.existsSync(CHROMIUM)) {
    tierUnavailable(t, 'browser', `${CHROMIUM} not found`, 'apt-get install chromium');
    return null;
  }
  const browser = await launchChromium();
  t.after(() => browser.close());
  return browser;
}
