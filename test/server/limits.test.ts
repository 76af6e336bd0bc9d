import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { PushClient as AgentPushClient } from '../../app/main/core/backend/push-client.js';
import { HttpReportSender } from '../../app/main/core/report-sender.js';
import { FeedServer } from '../../server/server.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';
import { connectMany, json, lines, PushClient, postReport, publish, request, startServer, upgradeRefusal, validReport, wsUrl } from './helpers.js';

/** A new empty feed folder and a reports file path beside it. */
function fresh(t: { after: (fn: () => void) => void }) {
  const root = tempDir(t, 'outpost-server-limits-');
  const feedDir = path.join(root, 'feed');
  fs.mkdirSync(feedDir);
  return { feedDir, reportsFile: path.join(root, 'reports.jsonl') };
}

const storedIds = (file: string): string[] => lines(file).map((line) => JSON.parse(line).report.id);

// ---------------------------------------------------------------------------------------------
// The WebSocket connection cap

test('push cap: with maxConnections 3 the 4th and 5th upgrades get 503 "server full: 3 connections", the 3 still get pushes, a freed slot is reusable', async (t) => {
  const logged: string[] = [];
  const dirs = fresh(t);
  const server = await startServer(t, { ...dirs, maxConnections: 3, log: (line) => logged.push(line) });
  const clients = await connectMany(wsUrl(server), 3);
  t.after(() => {
    for (const client of clients) client.terminate();
  });

  assert.deepEqual(await upgradeRefusal(wsUrl(server)), { status: 503, body: 'server full: 3 connections' });
  assert.deepEqual(await upgradeRefusal(wsUrl(server)), { status: 503, body: 'server full: 3 connections' });
  assert.equal(server.agentsConnected, 3);
  assert.equal(logged.filter((line) => line.includes('server full')).length, 1, `logged once, not per refusal:\n${logged.join('\n')}`);

  publish(dirs.feedDir, 1);
  for (const client of clients) assert.deepEqual(JSON.parse((await client.nextMessage(5_000)).text), { type: 'agent:update_required', feed_version: 1 });

  clients[0]?.terminate();
  await until('the server to see the connection closed', () => server.agentsConnected === 2);
  const again = await PushClient.connect(wsUrl(server));
  t.after(() => again.terminate());
  assert.equal(server.agentsConnected, 3);
  assert.ok(logged.includes('push: a connection closed: accepting new ones again (refused 2 while full)'), logged.join('\n'));
});

test("push cap: the agent's push client, refused for a full server, retries with a growing backoff (at least 100, 200, 400, 800 ms apart), then connects once a slot is free", async (t) => {
  const server = await startServer(t, { ...fresh(t), maxConnections: 1 });
  const holder = await PushClient.connect(wsUrl(server));
  t.after(() => holder.terminate());

  // A TCP relay in front of the server that notes when each connection attempt arrives.
  const attempts: number[] = [];
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((inbound) => {
    attempts.push(performance.now());
    const outbound = net.connect(server.port, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    relay.close();
  });
  const { port } = relay.address() as net.AddressInfo;

  const log = memoryLogger();
  const agent = new AgentPushClient({
    url: `ws://127.0.0.1:${port}/ws`,
    log,
    onPush: () => undefined,
    reconnectWindowMs: 100,
    maxBackoffMs: 800,
    // Full jitter draws each delay within its window: the top of it, here, to see the windows double.
    random: () => 0.999,
    proxyFor: () => '',
  });
  t.after(() => agent.close());
  agent.start();
  await until('five connection attempts', () => attempts.length >= 5, 10_000);
  const gaps = attempts.slice(1, 5).map((at, i) => at - (attempts[i] ?? 0));
  t.diagnostic(`gaps between attempts: ${gaps.map((gap) => gap.toFixed(0)).join(', ')} ms`);
  [100, 200, 400, 800].forEach((delay, i) => {
    assert.ok((gaps[i] ?? 0) >= delay - 5, `attempt ${i + 2} came ${gaps[i]?.toFixed(0)} ms after the one before, not after its backoff of ${delay} ms`);
  });
  assert.equal(log.lines.filter((line) => /push channel error: .*503/.test(line)).length, 1, log.lines.join('\n'));
  assert.equal(server.agentsConnected, 1, 'only the holder');

  holder.terminate();
  await until('the agent connected in the freed slot', () => log.lines.some((line) => line.includes('push channel open')), 10_000, () => log.lines.join('\n'));
  assert.equal(server.agentsConnected, 1);
});

// ---------------------------------------------------------------------------------------------
// Origins

test('origins: by default a WebSocket upgrade or a report carrying any Origin (even the server own loopback one, or "null") is refused with 403; without one it is accepted', async (t) => {
  const { reportsFile, ...dirs } = fresh(t);
  const server = await startServer(t, { ...dirs, reportsFile });
  for (const origin of [server.url, 'https://evil.example', 'null']) {
    const refused = await upgradeRefusal(wsUrl(server), { Origin: origin });
    assert.equal(refused.status, 403, origin);
    assert.match(refused.body, /--allow-origin/);
    const report = await request(server.url, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: origin }, body: JSON.stringify(validReport()) });
    assert.equal(report.status, 403, origin);
    assert.match((json(report) as { error: string }).error, /--allow-origin/);
  }
  assert.equal(server.agentsConnected, 0);
  assert.equal(server.health().reports_stored, 0, 'nothing refused was stored');

  const agent = await PushClient.connect(wsUrl(server));
  t.after(() => agent.terminate());
  assert.equal(server.agentsConnected, 1);
  assert.equal((await postReport(server.url, validReport())).status, 202);
  assert.equal(lines(reportsFile).length, 1);
});

test('origins: an allowed origin (given with a trailing slash and upper case) is accepted at /ws and /reports; another one is still refused', async (t) => {
  const server = await startServer(t, { ...fresh(t), allowedOrigins: ['HTTP://Console.Example:8080/', 'https://other.example'] });
  const page = await PushClient.connect(wsUrl(server), { headers: { Origin: 'http://console.example:8080' } });
  t.after(() => page.terminate());
  assert.equal(server.agentsConnected, 1);
  const accepted = await request(server.url, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'http://console.example:8080' }, body: JSON.stringify(validReport()) });
  assert.equal(accepted.status, 202);

  for (const origin of ['http://console.example', 'https://console.example:8080', 'http://evil.example']) {
    assert.equal((await upgradeRefusal(wsUrl(server), { Origin: origin })).status, 403, origin);
    const refused = await request(server.url, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: origin }, body: JSON.stringify(validReport()) });
    assert.equal(refused.status, 403, origin);
  }
  assert.equal(server.health().reports_stored, 1);
  await assert.rejects(FeedServer.start({ ...fresh(t), host: '127.0.0.1', port: 0, allowedOrigins: ['https://x.example/path'] }), /is not an origin/);
});

// ---------------------------------------------------------------------------------------------
// The bounded report store

test('report store: past maxReports 8 the oldest are dropped a quarter at a time (the file replaced only then), counted in /health; duplicates of kept reports still detected', async (t) => {
  const { reportsFile, ...dirs } = fresh(t);
  const logged: string[] = [];
  const server = await startServer(t, { ...dirs, reportsFile, maxReports: 8, log: (line) => logged.push(line) });
  const posted = Array.from({ length: 11 }, () => validReport());
  const inodes: number[] = [];
  for (const report of posted) {
    assert.deepEqual(json(await postReport(server.url, report)), { accepted: true, duplicate: false });
    inodes.push(fs.statSync(reportsFile).ino);
  }
  // 8 fit; the 9th trims to 6 (2 dropped) and makes 7; the 10th makes 8; the 11th trims again (2 more).
  assert.deepEqual(storedIds(reportsFile), posted.slice(4).map((r) => r.id));
  assert.deepEqual(json(await request(server.url, '/health')), { status: 'ok', feed_version: null, agents_connected: 0, reports_stored: 7, reports_dropped: 4, redis: null });
  const replaced = inodes.map((ino, i) => i > 0 && ino !== inodes[i - 1]).flatMap((changed, i) => (changed ? [i + 1] : []));
  assert.deepEqual(replaced, [9, 11], 'the file is replaced by the 9th and the 11th report only');
  assert.ok(logged.includes('reports: the store reached its bounds (8 reports, 67108864 bytes): dropped the oldest 2 report(s), 4 since start; 6 kept'), logged.join('\n'));

  assert.deepEqual(json(await postReport(server.url, posted[6])), { accepted: true, duplicate: true });
  assert.equal(lines(reportsFile).length, 7);
  if (process.platform !== 'win32') assert.equal((fs.statSync(reportsFile).mode & 0o777).toString(8), '600');
  await server.close();

  // After a restart with lower bounds, the file is trimmed at once and the kept ids still de-duplicate.
  const lower = await startServer(t, { ...dirs, reportsFile, maxReports: 4 });
  assert.deepEqual(storedIds(reportsFile), posted.slice(8).map((r) => r.id));
  assert.deepEqual([lower.health().reports_stored, lower.health().reports_dropped], [3, 4]);
  assert.deepEqual(json(await postReport(lower.url, posted[10])), { accepted: true, duplicate: true });
  assert.deepEqual(json(await postReport(lower.url, validReport())), { accepted: true, duplicate: false });
  assert.equal(lines(reportsFile).length, 4);
});

test('report store: past maxReportsBytes (1 MiB) the oldest are dropped; the file never passes the bound and keeps the newest reports', async (t) => {
  const { reportsFile, ...dirs } = fresh(t);
  const server = await startServer(t, { ...dirs, reportsFile, maxReportsBytes: 1024 * 1024 });
  // About 50 kB each: some 20 fit.
  const context = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`k${i}`, 'x'.repeat(2_000)]));
  const posted = Array.from({ length: 30 }, () => validReport({ context }));
  for (const report of posted) {
    assert.equal((await postReport(server.url, report)).status, 202);
    assert.ok(fs.statSync(reportsFile).size <= 1024 * 1024, `${fs.statSync(reportsFile).size} bytes`);
  }
  const { reports_stored: stored, reports_dropped: dropped } = server.health();
  t.diagnostic(`${stored} kept, ${dropped} dropped, ${fs.statSync(reportsFile).size} bytes`);
  assert.ok(dropped > 0);
  assert.equal(stored + dropped, posted.length);
  assert.deepEqual(storedIds(reportsFile), posted.slice(dropped).map((r) => r.id));
});

test('report store: trims cut at line starts when a torn line sits between reports: the first trim keeps it, the next drops it with the report before it', async (t) => {
  const { reportsFile, ...dirs } = fresh(t);
  const first = await FeedServer.start({ ...dirs, reportsFile, host: '127.0.0.1', port: 0, maxReports: 4 });
  const posted = [validReport(), validReport()];
  for (const report of posted) assert.equal((await postReport(first.url, report)).status, 202);
  await first.close();
  const torn = '{"received_at":"2026-01-01T00:00:00.000Z","report":{"id":"8d0c';
  fs.appendFileSync(reportsFile, torn);

  const second = await startServer(t, { ...dirs, reportsFile, maxReports: 4 });
  const post = async () => {
    const report = validReport();
    posted.push(report);
    assert.equal((await postReport(second.url, report)).status, 202);
  };
  // 2 stored + 2 fit; the 5th trims to 3 (maxReports less a quarter): only the oldest goes.
  for (let i = 0; i < 3; i++) await post();
  const ids = posted.map((r) => r.id);
  assert.deepEqual(
    lines(reportsFile).map((line) => (line === torn ? 'torn' : JSON.parse(line).report.id)),
    [ids[1], 'torn', ids[2], ids[3], ids[4]],
  );
  // The 6th trims again, from the start of the 3rd report: the torn line before it goes too.
  await post();
  assert.deepEqual(storedIds(reportsFile), posted.slice(2).map((r) => r.id));
  const text = fs.readFileSync(reportsFile, 'utf8');
  assert.equal(text, `${lines(reportsFile).join('\n')}\n`, 'the trimmed file starts at a line start: no piece of a line, no stray newline');
  assert.equal(second.health().reports_dropped, 2);
});

// ---------------------------------------------------------------------------------------------
// The per-agent rate limit

test('rate limit: a 4th report within the minute from one agent gets 429 with Retry-After 20 (the agent sender keeps it for later); another agent is unaffected; a token returns after 20 s', async (t) => {
  let now = new Date('2026-05-06T07:00:00.000Z');
  const logged: string[] = [];
  const { reportsFile, ...dirs } = fresh(t);
  const server = await startServer(t, { ...dirs, reportsFile, reportsPerMinute: 3, now: () => now, log: (line) => logged.push(line) });
  for (let i = 0; i < 3; i++) assert.equal((await postReport(server.url, validReport({ agent_id: 'busy' }))).status, 202);

  const over = await postReport(server.url, validReport({ agent_id: 'busy' }));
  assert.equal(over.status, 429);
  assert.equal(over.headers['retry-after'], '20');
  assert.match((json(over) as { error: string }).error, /more than 3 reports a minute from agent busy/);
  const sender = new HttpReportSender({ baseUrl: server.url, timeoutMs: 2_000, userAgent: 'outpost-test/1' });
  await assert.rejects(sender.send(validReport({ agent_id: 'busy' })), /HTTP 429 \(retry after 20\)/);
  assert.equal(logged.filter((line) => line.includes('agent busy sends more than 3 report(s) a minute')).length, 1, 'logged once per run of refusals');

  assert.equal((await postReport(server.url, validReport({ agent_id: 'quiet' }))).status, 202);

  now = new Date(now.getTime() + 19_000);
  const early = await postReport(server.url, validReport({ agent_id: 'busy' }));
  assert.equal(early.status, 429);
  assert.equal(early.headers['retry-after'], '1');
  now = new Date(now.getTime() + 1_000);
  assert.equal((await postReport(server.url, validReport({ agent_id: 'busy' }))).status, 202);
  assert.equal((await postReport(server.url, validReport({ agent_id: 'busy' }))).status, 429);
  assert.equal(lines(reportsFile).length, 5, '3 + 1 from busy, 1 from quiet');
});
