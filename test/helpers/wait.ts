import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` until it returns something truthy (returned), or fails after `timeoutMs` naming `what`
 * (and what `explain` says of the last state).
 */
export async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  explain?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${explain ? ` (${explain()})` : ''}`);
    await sleep(25);
  }
}
