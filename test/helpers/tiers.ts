import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';

/**
 * A test tier whose system tool is missing is skipped, by name, with the command that installs it;
 * under OUTPOST_REQUIRE_ALL_TIERS=1 (set by .ci/run) it fails instead, so CI cannot pass on a skip.
 */
export function tierUnavailable(t: TestContext, tier: string, reason: string, install: string): void {
  const message = `${tier} tier skipped: ${reason} (install with: ${install})`;
  if (process.env.OUTPOST_REQUIRE_ALL_TIERS === '1') assert.fail(`${message}; OUTPOST_REQUIRE_ALL_TIERS=1 allows no skip`);
  t.skip(message);
}
