/**
 * Push across server nodes: three outpost-server processes behind Debian's nginx (the balancer, TLS
 * with a CA the test makes), sharing publish events through Debian's redis-server. Agents here are
 * the product's push client (core/backend/push-client.ts) connected through nginx, many per process.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fs from 'node:fs';
import { PushClient } from '../../app/main/core/backend/push-client.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { nginxOrSkip } from '../helpers/nginx.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { Child } from '../helpers/processes.js';
import { redisOrSkip } from '../helpers/redis.js';
import { ReleaseLab } from '../helpers/release-lab.js';
import { until } from '../helpers/wait.js';

const SERVER_BIN = path.join(REPO_ROOT, 'bin', 'outpost-server.js');
const AGENTS = 30;

test('three nodes behind nginx share publishes through Redis: every agent on every node is pushed each announced publish, and a node never learns of one from the feed folder', async (t) => {
  const redis = await redisOrSkip(t);
  if (!redis) return;
  const lab = new ReleaseLab(t);
  lab.publish(lab.app('1.0.0', { 'main.js': 'v1' }), '1.0.0');
  const nodes = await Promise.all(
    [1, 2, 3].map(async (n) => {
      const node = new Child(process.execPath, [SERVER_BIN, '--feed', lab.feed, '--port', '0', '--reports', path.join(lab.root, `reports-${n}.jsonl`), '--redis', redis], { ...process.env });
      t.after(async () => {
        node.kill('SIGTERM');
        await node.finish();
      });
      const [, port] = await node.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      await node.waitFor(/redis: subscribed to outpost:feed-published/);
      return { node, port: Number(port) };
    }),
  );
  const nginx = await nginxOrSkip(
    t,
    lab.root,
    nodes.map((n) => n.port),
  );
  if (!nginx) return;

  const ca = [fs.readFileSync(nginx.ca.caFile, 'utf8')];
  const pushed: number[][] = Array.from({ length: AGENTS }, () => []);
  const logs = Array.from({ length: AGENTS }, () => memoryLogger());
  const clients = pushed.map(
    (seen, i) => new PushClient({ url: `${nginx.url.replace('https', 'wss')}/ws`, log: logs[i] as ReturnType<typeof memoryLogger>, onPush: (m) => seen.push(m.feed_version), ca }),
  );
  t.after(() => {
    for (const client of clients) client.close();
  });
  for (const client of clients) client.start();
  await until('every agent connected', () => logs.every((log) => log.lines.some((l) => l.includes('push channel open'))));
  const health = await Promise.all(nodes.map(async (n) => (await fetch(`http://127.0.0.1:${n.port}/health`)).json() as Promise<{ agents_connected: number }>));
  const spread = health.map((h) => h.agents_connected);
  assert.equal(
    spread.reduce((a, b) => a + b, 0),
    AGENTS,
  );
  assert.ok(
    spread.every((n) => n > 0),
    `the balancer spread the agents over the three nodes: ${spread.join(', ')}`,
  );

  // Published without announcing: the folder changed, but no node watches it.
  lab.publish(lab.app('1.1.0', { 'main.js': 'v2' }), '1.1.0');
  await sleep(2_500);
  assert.deepEqual(
    pushed.map((p) => p.length),
    pushed.map(() => 0),
    'no push: the nodes learn of publishes from Redis only',
  );

  const announced = lab.release(['channel', '--feed', lab.feed, '--key', lab.keys, '--channel', 'stable', '--version', '1.1.0', '--redis', redis]);
  assert.match(announced, /feed version (\d+) announced to 3 outpost-server node\(s\)/);
  const version = Number(/feed version (\d+) announced/.exec(announced)?.[1]);
  await until('the push at every agent', () => pushed.every((p) => p.length === 1));
  assert.deepEqual(
    pushed.map((p) => p[0]),
    pushed.map(() => version),
  );

  const published = lab.publish(lab.app('1.2.0', { 'main.js': 'v3' }), '1.2.0', ['--redis', redis]);
  assert.match(published, /announced to 3 outpost-server node\(s\)/);
  await until('the second push at every agent', () => pushed.every((p) => p.length === 2));
  for (const node of nodes) assert.match(node.node.stderr, /feed version \d+ published: pushed to \d+ agent\(s\)/);

  // A node that starts after a publish knows the newest version from Redis (and pushes it to no one: agents check on connect).
  const late = new Child(process.execPath, [SERVER_BIN, '--feed', lab.feed, '--port', '0', '--reports', path.join(lab.root, 'reports-late.jsonl'), '--redis', redis], { ...process.env });
  t.after(async () => {
    late.kill('SIGTERM');
    await late.finish();
  });
  const [, latePort] = await late.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
  const newest = Number(/feed version (\d+)/.exec(published)?.[1]);
  await until('the late node to read the newest version', async () => ((await (await fetch(`http://127.0.0.1:${latePort}/health`)).json()) as { feed_version: number | null }).feed_version === newest);
});

test('outpost-release --redis: a URL that is not redis:// is a usage error; Redis unreachable after a publish exits 69, saying the feed is published but not announced', async (t) => {
  const lab = new ReleaseLab(t);
  const app = lab.app('1.0.0', { 'main.js': 'v1' });
  assert.throws(() => lab.publish(app, '1.0.0', ['--redis', 'http://127.0.0.1:6379']), /--redis must be a redis:\/\/ or rediss:\/\/ URL/);
  assert.throws(() => lab.publish(app, '1.0.0', ['--redis', 'redis://127.0.0.1:9']), /exited 69: .*the feed is published, but announcing feed version 1 through redis:\/\/127\.0\.0\.1:9 failed/);
  assert.match(lab.release(['list', '--feed', lab.feed]), /1\.0\.0/, 'the release itself stands');
});
