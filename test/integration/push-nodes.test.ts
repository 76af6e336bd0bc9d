/**
 * Push across server nodes: three outpost-server processes behind Debian's nginx (the balancer, TLS
 * with a CA the test makes), sharing publish events through Debian's redis-server. Agents here are
 * the product's push client (core/backend/push-client.ts) connected through nginx, many per process.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fs from 'node:fs';
import { PushClient } from '../../app/main/core/backend/push-client.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { nginxOrSkip } from '../helpers/nginx.js';
import { redisOrSkip, type ServerNode, startServerNode } from '../helpers/redis.js';
import { ReleaseLab } from '../helpers/release-lab.js';
import { until } from '../helpers/wait.js';

const AGENTS = 30;

/** An outpost-server node on `lab`'s feed that learns of publishes from `redis`, once it has subscribed. */
function startNode(t: TestContext, lab: ReleaseLab, redis: string, name: string): Promise<ServerNode> {
  return startServerNode(t, redis, ['--feed', lab.feed, '--reports', path.join(lab.root, `reports-${name}.jsonl`)]);
}

async function health(port: number): Promise<{ agents_connected: number; feed_version: number | null }> {
  return (await fetch(`http://127.0.0.1:${port}/health`)).json() as Promise<{ agents_connected: number; feed_version: number | null }>;
}

/** `count` of the product's push clients through nginx, each recording the feed versions pushed to it and when it came back after a drop. */
function pushClients(t: TestContext, url: string, caFile: string, count: number, reconnectWindowMs?: number) {
  const ca = [fs.readFileSync(caFile, 'utf8')];
  const agents = Array.from({ length: count }, () => ({ pushed: [] as number[], reconnected: [] as number[], log: memoryLogger() }));
  const clients = agents.map(
    (agent) =>
      new PushClient({
        url: `${url.replace('https', 'wss')}/ws`,
        log: agent.log,
        onPush: (m) => agent.pushed.push(m.feed_version),
        onReconnect: () => agent.reconnected.push(performance.now()),
        ca,
        ...(reconnectWindowMs !== undefined && { reconnectWindowMs }),
      }),
  );
  t.after(() => {
    for (const client of clients) client.close();
  });
  for (const client of clients) client.start();
  return agents;
}

/**
 * A feed with 1.0.0, Redis, three nodes on it and nginx in front of them (TLS); null, the test
 * skipped (failed under CI), without redis-server or nginx.
 */
async function threeNodes(t: TestContext) {
  const redis = await redisOrSkip(t);
  if (!redis) return null;
  const lab = new ReleaseLab(t);
  lab.publish(lab.app('1.0.0', { 'main.js': 'v1' }), '1.0.0');
  const nodes = await Promise.all([1, 2, 3].map((n) => startNode(t, lab, redis, String(n))));
  const nginx = await nginxOrSkip(
    t,
    lab.root,
    nodes.map((n) => n.port),
  );
  return nginx && { redis, lab, nodes, nginx };
}

test('three nodes behind nginx share publishes through Redis: every agent on every node is pushed each announced publish, and a node never learns of one from the feed folder', async (t) => {
  const fleet = await threeNodes(t);
  if (!fleet) return;
  const { redis, lab, nodes, nginx } = fleet;

  const agents = pushClients(t, nginx.url, nginx.ca.caFile, AGENTS);
  const pushed = agents.map((a) => a.pushed);
  await until('every agent connected', () => agents.every((a) => a.log.lines.some((l) => l.includes('push channel open'))));
  const spread = (await Promise.all(nodes.map((n) => health(n.port)))).map((h) => h.agents_connected);
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
  for (const node of nodes) assert.match(node.child.stderr, /feed version \d+ published: pushed to \d+ agent\(s\)/);

  // A node that starts after a publish knows the newest version from Redis (and pushes it to no one: agents check on connect).
  const late = await startNode(t, lab, redis, 'late');
  const newest = Number(/feed version (\d+)/.exec(published)?.[1]);
  await until('the late node to read the newest version', async () => (await health(late.port)).feed_version === newest);
});

test('outpost-release --redis: a URL that is not redis:// is a usage error; Redis unreachable after a publish exits 69, saying the feed is published but not announced', async (t) => {
  const lab = new ReleaseLab(t);
  const app = lab.app('1.0.0', { 'main.js': 'v1' });
  assert.throws(() => lab.publish(app, '1.0.0', ['--redis', 'http://127.0.0.1:6379']), /--redis must be a redis:\/\/ or rediss:\/\/ URL/);
  assert.throws(() => lab.publish(app, '1.0.0', ['--redis', 'redis://127.0.0.1:9']), /exited 69: .*the feed is published, but announcing feed version 1 through redis:\/\/127\.0\.0\.1:9 failed/);
  assert.match(lab.release(['list', '--feed', lab.feed]), /1\.0\.0/, 'the release itself stands');
});

test('a node killed: its agents come back through nginx to the other two, spread over their reconnect window (full jitter), each once, while the survivors stay responsive; a publish announced meanwhile still reaches every agent', async (t) => {
  const fleet = await threeNodes(t);
  if (!fleet) return;
  const { redis, lab, nodes, nginx } = fleet;
  const windowMs = 3_000;
  const agents = pushClients(t, nginx.url, nginx.ca.caFile, AGENTS, windowMs);
  await until('every agent connected', () => agents.every((a) => a.log.lines.some((l) => l.includes('push channel open'))));
  const [victim, ...survivors] = nodes as [(typeof nodes)[number], ...typeof nodes];
  const orphans = (await health(victim.port)).agents_connected;
  assert.ok(orphans > 0, 'the balancer gave the victim some agents');

  victim.child.kill('SIGKILL');
  const killed = performance.now();
  // During the storm the survivors answer, each within a second.
  const slowest = await Promise.all(
    survivors.map(async (n) => {
      const asked = performance.now();
      await health(n.port);
      return performance.now() - asked;
    }),
  );
  assert.ok(
    slowest.every((ms) => ms < 1_000),
    `survivors answered in ${slowest.map((ms) => ms.toFixed(0)).join(', ')} ms`,
  );
  const announced = lab.publish(lab.app('1.1.0', { 'main.js': 'v2' }), '1.1.0', ['--redis', redis]);
  const version = Number(/feed version (\d+) announced/.exec(announced)?.[1]);

  const back = () => agents.filter((a) => a.reconnected.length > 0);
  await until('the orphans back', () => back().length === orphans, 4 * windowMs);
  const delays = back().map((a) => (a.reconnected[0] as number) - killed);
  t.diagnostic(`${orphans} agents back after ${delays.map((ms) => ms.toFixed(0)).join(', ')} ms (window ${windowMs} ms)`);
  assert.ok(
    back().every((a) => a.reconnected.length === 1),
    'each came back once',
  );
  assert.ok(
    delays.every((ms) => ms <= windowMs + 2_000),
    'all within the window (and up to two seconds for the connection itself, on a loaded machine)',
  );
  if (orphans >= 4) assert.ok(Math.max(...delays) - Math.min(...delays) > windowMs / 10, 'spread over the window, not in one burst');
  const after = (await Promise.all(survivors.map((n) => health(n.port)))).map((h) => h.agents_connected);
  assert.equal(
    after.reduce((a, b) => a + b, 0),
    AGENTS,
    `all ${AGENTS} on the two survivors: ${after.join(', ')}`,
  );
  // Those that stayed connected were pushed the publish; the orphans, away when it was announced,
  // check once on reconnect instead (the agent's update service does, on onReconnect).
  await until('the publish at every agent that stayed connected', () => agents.filter((a) => a.reconnected.length === 0).every((a) => a.pushed.includes(version)));
});
