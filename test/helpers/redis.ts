import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from './nginx.js';
import { REPO_ROOT, tempDir } from './paths.js';
import { Child } from './processes.js';
import { tierUnavailable } from './tiers.js';
import { until } from './wait.js';

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

/** An outpost-server node of a test: its process, and where it listens. */
export interface ServerNode {
  readonly child: Child;
  readonly port: number;
  readonly url: string;
}

/**
 * An outpost-server node on `redis`, on a free loopback port, with `args` besides (`--feed`,
 * `--reports`...); resolved once it listens, its `/health` says Redis is ready (connected, subscribed:
 * a node serves before Redis answers) and it has logged each of `ready`. Stopped when the test ends.
 */
export async function startServerNode(t: TestContext, redis: string, args: readonly string[], ready: readonly RegExp[] = []): Promise<ServerNode> {
  const child = new Child(process.execPath, [path.join(REPO_ROOT, 'bin', 'outpost-server.js'), '--port', '0', '--redis', redis, ...args], { ...process.env });
  t.after(async () => {
    child.kill('SIGTERM');
    await child.finish();
  });
  const [, port] = await child.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
  const url = `http://127.0.0.1:${port}`;
  await until(`${url}/health to say Redis is ready`, async () => ((await (await fetch(`${url}/health`)).json()) as { redis: unknown }).redis === 'ready', 30_000);
  for (const line of ready) await child.waitFor(line);
  return { child, port: Number(port), url };
}
