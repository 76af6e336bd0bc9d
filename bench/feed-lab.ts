import { type ChildProcess, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startUntil } from './measure.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RELEASE = path.join(ROOT, 'bin', 'outpost-release.js');
const SERVER = path.join(ROOT, 'bin', 'outpost-server.js');

/** `outpost-release` with `args`: its output and how long it took; throws with its stderr if it fails. */
export function release(args: readonly string[]): { stdout: string; ms: number } {
  const t0 = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [RELEASE, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`outpost-release ${args[0]}: ${result.stderr}`);
  return { stdout: result.stdout, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

/** `outpost-server` on `feed`, on a free loopback port, once it listens: the process and its URL. */
export async function startFeedServer(feed: string, reportsFile: string): Promise<{ child: ChildProcess; url: string }> {
  const server = await startUntil(process.execPath, [SERVER, '--feed', feed, '--port', '0', '--reports', reportsFile], process.env, /listening on http:\/\/127\.0\.0\.1:\d+/);
  return { child: server.child, url: /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(server.output)?.[1] as string };
}
