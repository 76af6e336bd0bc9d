import type { TestContext } from 'node:test';
import { tierUnavailable } from '../helpers/tiers.js';
import { prepareWine, type Wine } from './harness.js';

/** The Wine tier's entry: Wine ready to use, or the test skipped (failed under CI) saying why. */
export async function wineOrSkip(t: TestContext): Promise<Wine | null> {
  const availability = await prepareWine();
  if (availability.ok) return availability.wine;
  tierUnavailable(t, 'wine', availability.reason, availability.install);
  return null;
}
