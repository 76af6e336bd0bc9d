import fs from 'node:fs';
import type { TestContext } from 'node:test';
import { freePort } from './nginx.js';
import { tempDir } from './paths.js';
import { Child } from './processes.js';
import { tierUnavailable } from './tiers.js';

/** Debian's redis-server, as operators run it. */
export const REDIS_SERVER = '/usr/bin/redis-server';

/**
 * A redis-server of the test's own on a free loopback port, persisting nothing, stopped when the test
 * ends: its URL. Null, the test skipped (failed under CI), without redis-server.
 */
export async function redisOrSkip(t: TestContext): Promise<string | null> {
  if (!fs.existsSync(REDIS_SERVER)) {
    tierUnavailable(t, 'redis', `${REDIS_SERVER} not found`, 'apt-get install redis-server');
    return null;
  }
  const port = await freePort();
  const redis = new Child(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tempDir(t, 'outpost-redis-')], process.env);
  t.after(async () => {
    redis.kill('SIGTERM');
    await redis.finish(5_000);
  });
  await redis.waitFor(/Ready to accept connections/);
  return `redis://127.0.0.1:${port}`;
}
