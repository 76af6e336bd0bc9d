/**
 * Agents that authenticate (outpost-server --enrollment-secrets): enrollment, tokens on /reports and
 * /ws, revocation by the operator command (a real process, on the file a running server follows),
 * and the per-agent quotas. The single-node store; the Redis one is in test/integration/agent-auth-nodes.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { AGENT_REVOKED, AGENT_TOKEN, ENROLLMENT_SECRET } from '../../app/common/enrollment.js';
import { AgentCredentials } from '../../app/main/core/backend/agent-credentials.js';
import { BackendHttp } from '../../app/main/core/backend/backend-http.js';
import { KeptSecret } from '../../app/main/core/backend/kept-secret.js';
import { HttpReportSender } from '../../app/main/core/report-sender.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { REPO_ROOT, tempDir } from '../helpers/paths.js';
import { Child } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';
import { json, lines, PushClient, request, startServer, upgradeRefusal, validReport, wsUrl } from './helpers.js';

const SERVER_BIN = path.join(REPO_ROOT, 'bin', 'outpost-server.js');
const SECRET = 'an-organisations-enrollment-secret-0123456789';
const ROTATED = 'its-replacement-during-a-rotation-9876543210';

function fresh(t: { after: (fn: () => void) => void }) {
  const root = tempDir(t, 'outpost-server-auth-');
  const feedDir = path.join(root, 'feed');
  fs.mkdirSync(feedDir);
  return { root, feedDir, reportsFile: path.join(root, 'reports.jsonl'), agentsFile: path.join(root, 'agents.jsonl') };
}

function enroll(baseUrl: string, agentId: string, secret = SECRET) {
  return request(baseUrl, '/enroll', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${secret}` }, body: JSON.stringify({ agent_id: agentId }) });
}

async function tokenOf(baseUrl: string, agentId: string, secret = SECRET): Promise<string> {
  const answer = await enroll(baseUrl, agentId, secret);
  assert.equal(answer.status, 201, answer.body.toString());
  const { token, agent_id } = json(answer) as { token: string; agent_id: string };
  assert.equal(agent_id, agentId);
  assert.match(token, AGENT_TOKEN);
  return token;
}

function report(baseUrl: string, body: unknown, token?: string) {
  return request(baseUrl, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json', ...(token && { Authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) });
}

function outpostServer(args: readonly string[]) {
  return spawnSync(process.execPath, [SERVER_BIN, ...args], { encoding: 'utf8' });
}

test('enrollment: the organisation secret (any of them) buys a token of the agent\'s own; reports and push need it, a report may name only its own agent; the store keeps no token; strangers are refused and the server stays responsive', async (t) => {
  const dirs = fresh(t);
  const logged: string[] = [];
  const server = await startServer(t, { ...dirs, enrollmentSecrets: [SECRET, ROTATED], log: (line) => logged.push(line) });

  // Strangers: no secret, a wrong one, a token that was never given, none at all.
  const refused = [
    await request(server.url, '/enroll', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"agent_id":"a"}' }),
    await enroll(server.url, 'agent-1', 'a-wrong-secret-that-is-long-enough-000000000'),
  ];
  for (const answer of refused) assert.equal(answer.status, 401, answer.body.toString());
  const unknownToken = 'A'.repeat(43);
  for (const token of [undefined, unknownToken]) {
    const answer = await report(server.url, validReport(), token);
    assert.equal(answer.status, 401);
    assert.equal(answer.headers['www-authenticate'], 'Bearer');
    assert.match((json(answer) as { error: string }).error, token ? /unknown token: enroll again/ : /accepts only enrolled agents/);
    assert.equal((await upgradeRefusal(wsUrl(server), token ? { Authorization: `Bearer ${token}` } : {})).status, 401);
  }
  assert.equal((await enroll(server.url, 'has spaces')).status, 400);
  assert.equal(fs.existsSync(dirs.reportsFile) ? lines(dirs.reportsFile).length : 0, 0, 'no stranger stored anything');
  assert.equal(logged.filter((line) => /refused an enrollment/.test(line)).length, 2);

  const token = await tokenOf(server.url, 'agent-1');
  const other = await tokenOf(server.url, 'agent-2', ROTATED);
  const mine = validReport({ agent_id: 'agent-1' });
  assert.equal((await report(server.url, mine, token)).status, 202);
  const impostor = await report(server.url, validReport({ agent_id: 'agent-1' }), other);
  assert.equal(impostor.status, 403, 'agent-2 cannot report as agent-1');
  assert.deepEqual(
    lines(dirs.reportsFile).map((line) => JSON.parse(line).report.id),
    [mine.id],
  );

  const channel = await PushClient.connect(wsUrl(server), { headers: { Authorization: `Bearer ${token}` } });
  t.after(() => channel.terminate());
  assert.equal(server.agentsConnected, 1);

  // Enrolling again (a reinstalled agent) replaces the token: the old one stops working.
  const again = await tokenOf(server.url, 'agent-1');
  assert.notEqual(again, token);
  assert.equal((await report(server.url, validReport({ agent_id: 'agent-1' }), token)).status, 401);
  assert.equal((await report(server.url, validReport({ agent_id: 'agent-1' }), again)).status, 202);

  const stored = fs.readFileSync(dirs.agentsFile, 'utf8');
  for (const secret of [token, again, other, SECRET]) assert.ok(!stored.includes(secret), 'the agents file holds hashes, never a token or a secret');
  assert.equal(fs.statSync(dirs.agentsFile).mode & 0o777, 0o600);
  assert.equal((await request(server.url, '/health')).status, 200);
});

test('revocation by the operator command while the server runs: the agent\'s open push channel is closed, its reports are refused as revoked, and it cannot enroll again; the others carry on', async (t) => {
  const dirs = fresh(t);
  const secrets = path.join(dirs.root, 'enrollment-secrets');
  fs.writeFileSync(secrets, `# the organisation's secret\n${SECRET}\n`, { mode: 0o600 });
  const server = new Child(process.execPath, [SERVER_BIN, '--feed', dirs.feedDir, '--port', '0', '--reports', dirs.reportsFile, '--enrollment-secrets', secrets, '--agents', dirs.agentsFile], { ...process.env });
  t.after(async () => {
    server.kill('SIGTERM');
    await server.finish();
  });
  const [, url] = await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
  const baseUrl = url as string;
  const bad = await tokenOf(baseUrl, 'agent-bad');
  const good = await tokenOf(baseUrl, 'agent-good');
  const ws = `${baseUrl.replace('http', 'ws')}/ws`;
  const badChannel = await PushClient.connect(ws, { headers: { Authorization: `Bearer ${bad}` } });
  const goodChannel = await PushClient.connect(ws, { headers: { Authorization: `Bearer ${good}` } });
  t.after(() => {
    badChannel.terminate();
    goodChannel.terminate();
  });

  const listed = outpostServer(['agents', 'list', '--agents', dirs.agentsFile, '--json']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.deepEqual(
    (JSON.parse(listed.stdout) as { agents: { agent_id: string; revoked_at: string | null }[] }).agents.map((a) => [a.agent_id, a.revoked_at]),
    [['agent-bad', null], ['agent-good', null]],
  );
  const revoked = outpostServer(['agents', 'revoke', 'agent-bad', '--agents', dirs.agentsFile]);
  assert.equal(revoked.status, 0, revoked.stderr);
  assert.equal(revoked.stdout, 'agent-bad: revoked\n');
  assert.equal(outpostServer(['agents', 'revoke', 'agent-bad', '--agents', dirs.agentsFile]).stdout, 'agent-bad: already revoked\n');
  assert.equal(outpostServer(['agents', 'revoke', 'nobody', '--agents', dirs.agentsFile]).status, 66);

  await badChannel.closed();
  await server.waitFor(/agents: agent-bad was revoked: closed its 1 push channel\(s\) on this node/);
  const answer = await report(baseUrl, validReport({ agent_id: 'agent-bad' }), bad);
  assert.equal(answer.status, 403);
  assert.equal((json(answer) as { code: string }).code, AGENT_REVOKED);
  const reenroll = await enroll(baseUrl, 'agent-bad');
  assert.equal(reenroll.status, 403, 'the enrollment secret does not undo a revocation');
  assert.equal((json(reenroll) as { code: string }).code, AGENT_REVOKED);
  const upgrade = await upgradeRefusal(ws, { Authorization: `Bearer ${bad}` });
  assert.equal(upgrade.status, 403);
  assert.equal((JSON.parse(upgrade.body) as { code: string }).code, AGENT_REVOKED);

  assert.equal(goodChannel.socket.readyState, goodChannel.socket.OPEN, 'the other agent keeps its channel');
  assert.equal((await report(baseUrl, validReport({ agent_id: 'agent-good' }), good)).status, 202);
});

test('quotas per agent: reports a minute, push channels, enrollments a minute; one agent over its quota does not cost another, and the server stays responsive', async (t) => {
  const dirs = fresh(t);
  const server = await startServer(t, { ...dirs, enrollmentSecrets: [SECRET], reportsPerMinute: 3, maxConnectionsPerAgent: 2, enrollmentsPerMinute: 2 });
  const noisy = await tokenOf(server.url, 'noisy');
  const quiet = await tokenOf(server.url, 'quiet');

  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await report(server.url, validReport({ agent_id: 'noisy' }), noisy)).status);
  assert.deepEqual(statuses, [202, 202, 202, 429, 429]);
  assert.equal((await report(server.url, validReport({ agent_id: 'quiet' }), quiet)).status, 202, 'the quiet agent is not limited by the noisy one');

  const ws = wsUrl(server);
  const channels = [await PushClient.connect(ws, { headers: { Authorization: `Bearer ${noisy}` } }), await PushClient.connect(ws, { headers: { Authorization: `Bearer ${noisy}` } })];
  t.after(() => {
    for (const channel of channels) channel.terminate();
  });
  const third = await upgradeRefusal(ws, { Authorization: `Bearer ${noisy}` });
  assert.equal(third.status, 429);
  assert.match(third.body, /has 2 push channel\(s\) open already/);
  channels.push(await PushClient.connect(ws, { headers: { Authorization: `Bearer ${quiet}` } }));
  channels[0]?.terminate();
  await until('the closed channel uncounted', () => server.agentsConnected === 2);
  channels.push(await PushClient.connect(ws, { headers: { Authorization: `Bearer ${noisy}` } }));

  // Two enrollments a minute: 'quiet' enrolled once, so one more, then 429 with Retry-After.
  assert.equal((await enroll(server.url, 'quiet')).status, 201);
  const over = await enroll(server.url, 'quiet');
  assert.equal(over.status, 429);
  assert.ok(Number(over.headers['retry-after']) >= 1);
  assert.equal((await request(server.url, '/health')).status, 200);
});

test('outpost-server refuses an unusable secrets file (exit 78, saying why) and warns of one others can read; new-enrollment-secret prints one it accepts', async (t) => {
  const dirs = fresh(t);
  const file = path.join(dirs.root, 'secrets');
  const made = outpostServer(['new-enrollment-secret']);
  assert.equal(made.status, 0);
  const secret = made.stdout.trim();
  assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
  for (const [text, says] of [
    ['', /holds no enrollment secret/],
    ['short\n', /secret 1 is not one/],
  ] as const) {
    fs.writeFileSync(file, text, { mode: 0o600 });
    const run = outpostServer(['--feed', dirs.feedDir, '--port', '0', '--reports', dirs.reportsFile, '--enrollment-secrets', file]);
    assert.equal(run.status, 78, run.stderr);
    assert.match(run.stderr, says);
  }
  assert.equal(outpostServer(['--feed', dirs.feedDir, '--enrollment-secrets', path.join(dirs.feedDir, 's')]).status, 64, 'never inside the public feed');
  assert.equal(outpostServer(['--feed', dirs.feedDir, '--agents', dirs.agentsFile]).status, 64, '--agents without secrets');

  fs.writeFileSync(file, `${secret}\n`, { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  const server = new Child(process.execPath, [SERVER_BIN, '--feed', dirs.feedDir, '--port', '0', '--reports', dirs.reportsFile, '--enrollment-secrets', file], { ...process.env });
  t.after(async () => {
    server.kill('SIGTERM');
    await server.finish();
  });
  await server.waitFor(/can be read by other users \(mode 644\): chmod 600 it/);
  const [, url] = await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
  await tokenOf(url as string, 'agent-1', secret);
});

test("the agent's credentials, in process: with its enrollment secret it reports to a server that does not authenticate (no /enroll: no token), and to one that does (one enrollment, the token kept)", async (t) => {
  const dirs = fresh(t);
  const kept = (name: string, pattern: RegExp) =>
    // A per-machine agent's keeping (elevated): the file only, so no credential store is asked.
    new KeptSecret({ label: name, file: path.join(dirs.root, name), account: name, pattern, elevated: true, credentials: NO_STORE });
  const enrollment = kept('enrollment.secret', ENROLLMENT_SECRET);
  enrollment.write(SECRET);
  const token = kept('agent.token', AGENT_TOKEN);
  const sender = (url: string) => {
    const log = memoryLogger();
    const options = { baseUrl: url, timeoutMs: 5_000, userAgent: 'outpost-test' };
    const credentials = new AgentCredentials({ agentId: 'agent-1', enrollment, token, http: new BackendHttp(options), log, now: () => new Date() });
    return { log, send: new HttpReportSender({ ...options, credentials }) };
  };

  const open = await startServer(t, { ...dirs, reportsFile: path.join(dirs.root, 'open-reports.jsonl') });
  const toOpen = sender(open.url);
  assert.deepEqual(await toOpen.send.send(validReport({ agent_id: 'agent-1' })), { outcome: 'accepted' });
  assert.ok(toOpen.log.lines.some((line) => line.includes('does not enroll agents (HTTP 404): talking to it without a token')), toOpen.log.lines.join('\n'));
  assert.equal(token.read(), null);

  const closed = await startServer(t, { ...dirs, enrollmentSecrets: [SECRET] });
  const toClosed = sender(closed.url);
  assert.deepEqual(await toClosed.send.send(validReport({ agent_id: 'agent-1' })), { outcome: 'accepted' });
  assert.deepEqual(await toClosed.send.send(validReport({ agent_id: 'agent-1' })), { outcome: 'accepted' });
  assert.equal(toClosed.log.lines.filter((line) => line.includes('enrolled at')).length, 1);
  assert.match(token.read()?.value ?? '', AGENT_TOKEN);
});

/** Never asked: the keeping above is a per-machine agent's, which uses its file only. */
const NO_STORE = {
  name: 'no store (never asked)',
  get: () => assert.fail('the credential store was asked'),
  set: () => assert.fail('the credential store was asked'),
  delete: () => assert.fail('the credential store was asked'),
};
