/**
 * Agents that authenticate across server nodes: three outpost-server processes sharing the agent
 * registry in Debian's redis-server (a token given by one node works at every other), a revocation
 * by the operator command closing the agent's push channel on whichever node holds it, and a Redis
 * outage answered 503 by nodes that stay responsive.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { AGENT_REVOKED } from '../../app/common/enrollment.js';
import { REPO_ROOT, tempDir } from '../helpers/paths.js';
import { redisOrSkip, type ServerNode, startServerNode } from '../helpers/redis.js';
import { json, PushClient, request, upgradeRefusal, validReport } from '../server/helpers.js';

const SERVER_BIN = path.join(REPO_ROOT, 'bin', 'outpost-server.js');
const SECRET = 'fleet-enrollment-secret-for-three-nodes-000000';

function startNode(t: TestContext, root: string, redis: string, name: string): Promise<ServerNode> {
  const feed = path.join(root, 'feed');
  const secrets = path.join(root, 'secrets');
  fs.mkdirSync(feed, { recursive: true });
  fs.writeFileSync(secrets, `${SECRET}\n`, { mode: 0o600 });
  // A node serves before Redis answers (and says 503 meanwhile): the test starts once /health says it does.
  return startServerNode(t, redis, ['--feed', feed, '--reports', path.join(root, `reports-${name}.jsonl`), '--enrollment-secrets', secrets]);
}

const enroll = (url: string, agentId: string) =>
  request(url, '/enroll', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${SECRET}` }, body: JSON.stringify({ agent_id: agentId }) });

const report = (url: string, body: unknown, token: string) =>
  request(url, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify(body) });

test('three nodes share the agents in Redis: a token from one node works on the others; a revocation closes the push channel where it is and is refused everywhere; with Redis down the nodes answer 503 and stay responsive', async (t) => {
  const redis = await redisOrSkip(t);
  if (!redis) return;
  const root = tempDir(t, 'outpost-auth-nodes-');
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => startNode(t, root, redis, name)));
  assert.ok(a && b && c);

  const enrolled = await enroll(a.url, 'agent-7');
  assert.equal(enrolled.status, 201);
  const { token } = json(enrolled) as { token: string };
  assert.equal((await report(b.url, validReport({ agent_id: 'agent-7' }), token)).status, 202, 'the token given by node a works at node b');
  const channel = await PushClient.connect(`${c.url.replace('http', 'ws')}/ws`, { headers: { Authorization: `Bearer ${token}` } });
  t.after(() => channel.terminate());

  const revoke = spawnSync(process.execPath, [SERVER_BIN, 'agents', 'revoke', 'agent-7', '--redis', redis], { encoding: 'utf8' });
  assert.equal(revoke.status, 0, revoke.stderr);
  assert.equal(revoke.stdout, 'agent-7: revoked\n');
  await channel.closed();
  await c.child.waitFor(/agents: agent-7 was revoked: closed its 1 push channel\(s\) on this node/);
  for (const node of [a, b, c]) {
    const answer = await report(node.url, validReport({ agent_id: 'agent-7' }), token);
    assert.equal(answer.status, 403);
    assert.equal((json(answer) as { code: string }).code, AGENT_REVOKED);
    assert.equal((await enroll(node.url, 'agent-7')).status, 403);
  }
  const listed = spawnSync(process.execPath, [SERVER_BIN, 'agents', 'list', '--redis', redis, '--json'], { encoding: 'utf8' });
  const agents = (JSON.parse(listed.stdout) as { agents: { agent_id: string; revoked_at: string | null }[] }).agents;
  assert.equal(agents.length, 1);
  assert.equal(agents[0]?.agent_id, 'agent-7');
  assert.ok(agents[0]?.revoked_at);

  // Redis gone: nothing unchecked gets in, and the nodes still answer.
  const other = json(await enroll(b.url, 'agent-8')) as { token: string };
  const port = new URL(redis).port;
  spawnSync('redis-cli', ['-p', port, 'shutdown', 'nosave']);
  await a.child.waitFor(/redis: .* unreachable .*enrollments and new push channels are answered 503/);
  const down = await enroll(a.url, 'agent-9');
  assert.equal(down.status, 503);
  assert.ok(Number(down.headers['retry-after']) > 0);
  assert.equal((await upgradeRefusal(`${b.url.replace('http', 'ws')}/ws`, { Authorization: `Bearer ${other.token}` })).status, 503);
  for (const node of [a, b, c]) assert.equal((await request(node.url, '/health')).status, 200);
  const unreachable = spawnSync(process.execPath, [SERVER_BIN, 'agents', 'list', '--redis', redis], { encoding: 'utf8' });
  assert.equal(unreachable.status, 69);
});
