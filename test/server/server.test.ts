import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { WebSocket } from 'ws';
import { UpdateRequired } from '../../app/common/push.js';
import { ReportAck } from '../../app/common/reports.js';
import { REPORT_BODY_MAX_BYTES } from '../../server/reports-intake.js';
import { FeedServer } from '../../server/server.js';
import { REPO_ROOT, tempDir } from '../helpers/paths.js';
import { Child } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';
import { connectMany, json, lines, PushClient, postReport, publish, request, startServer, timestampJson, upgradeRefusal, validReport, wsUrl } from './helpers.js';

const SERVER_BIN = path.join(REPO_ROOT, 'bin', 'outpost-server.js');
const LISTENING = /^outpost-server listening on (http:\/\/\S+):(\d+) \(feed (.+)\)$/m;
const SECRET = 'TOP-SECRET-outside-the-feed';

/** A feed with metadata at version 3, a 100 kB target, a secret file next to it, and a symlink to that secret inside it. */
function makeFeed(t: { after: (fn: () => void) => void }) {
  const root = tempDir(t, 'outpost-server-test-');
  const feedDir = path.join(root, 'feed');
  fs.mkdirSync(path.join(feedDir, 'metadata'), { recursive: true });
  fs.mkdirSync(path.join(feedDir, 'targets'), { recursive: true });
  fs.writeFileSync(path.join(feedDir, 'metadata', 'timestamp.json'), timestampJson(3));
  fs.writeFileSync(path.join(feedDir, 'metadata', '3.snapshot.json'), '{"signed":{}}');
  const blob = randomBytes(100_000);
  fs.writeFileSync(path.join(feedDir, 'targets', 'abc123.outpost.tar.gz'), blob);
  fs.mkdirSync(path.join(feedDir, 'files', 'ab'), { recursive: true });
  fs.writeFileSync(path.join(feedDir, 'files', 'ab', `${'ab'.repeat(32)}.zst`), blob.subarray(0, 100));
  fs.writeFileSync(path.join(feedDir, '.hidden'), SECRET);
  const secretFile = path.join(root, 'secret.txt');
  fs.writeFileSync(secretFile, SECRET);
  fs.symlinkSync(path.join('..', '..', 'secret.txt'), path.join(feedDir, 'targets', 'escape'));
  fs.symlinkSync(root, path.join(feedDir, 'targets', 'escape-dir'));
  return { root, feedDir, blob, secretFile, reportsFile: path.join(root, 'reports.jsonl') };
}

// ---------------------------------------------------------------------------------------------
// The feed as static files

test('feed files: GET and HEAD with Content-Length, byte ranges for resumed downloads, cache headers', async (t) => {
  const { feedDir, blob, reportsFile } = makeFeed(t);
  const server = await startServer(t, { feedDir, reportsFile });
  const target = '/feed/targets/abc123.outpost.tar.gz';

  const full = await request(server.url, target);
  assert.equal(full.status, 200);
  assert.equal(full.headers['content-length'], '100000');
  assert.equal(full.headers['accept-ranges'], 'bytes');
  assert.equal(full.headers['content-type'], 'application/octet-stream');
  assert.equal(full.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.ok(full.body.equals(blob));

  const head = await request(server.url, target, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '100000');
  assert.equal(head.body.length, 0);

  // A download dropped after 40,000 bytes resumes from there; both parts make the file.
  const rest = await request(server.url, target, { headers: { Range: 'bytes=40000-' } });
  assert.equal(rest.status, 206);
  assert.equal(rest.headers['content-range'], 'bytes 40000-99999/100000');
  assert.equal(rest.headers['content-length'], '60000');
  assert.ok(Buffer.concat([blob.subarray(0, 40_000), rest.body]).equals(blob));

  const middle = await request(server.url, target, { headers: { Range: 'bytes=10-19' } });
  assert.equal(middle.status, 206);
  assert.equal(middle.headers['content-range'], 'bytes 10-19/100000');
  assert.equal(middle.headers['content-length'], '10');
  assert.ok(middle.body.equals(blob.subarray(10, 20)));

  const clamped = await request(server.url, target, { headers: { Range: 'bytes=99990-200000' } });
  assert.equal(clamped.status, 206);
  assert.equal(clamped.headers['content-range'], 'bytes 99990-99999/100000');
  assert.ok(clamped.body.equals(blob.subarray(99_990)));

  const suffix = await request(server.url, target, { headers: { Range: 'bytes=-5' } });
  assert.equal(suffix.status, 206);
  assert.ok(suffix.body.equals(blob.subarray(-5)));

  for (const range of ['bytes=100000-', 'bytes=500000-600000']) {
    const past = await request(server.url, target, { headers: { Range: range } });
    assert.equal(past.status, 416, range);
    assert.equal(past.headers['content-range'], 'bytes */100000');
    assert.equal(past.headers['content-length'], '0');
  }
  // A Range we do not honour (several ranges) gets the whole file, as RFC 9110 allows.
  const several = await request(server.url, target, { headers: { Range: 'bytes=0-1,5-6' } });
  assert.equal(several.status, 200);
  assert.equal(several.body.length, 100_000);

  const timestamp = await request(server.url, '/feed/metadata/timestamp.json');
  assert.equal(timestamp.status, 200);
  assert.equal(timestamp.headers['cache-control'], 'no-cache', 'timestamp.json changes with every publish');
  assert.equal(timestamp.headers['content-type'], 'application/json');
  assert.equal(timestamp.body.toString(), timestampJson(3));
  const snapshot = await request(server.url, '/feed/metadata/3.snapshot.json');
  assert.equal(snapshot.headers['cache-control'], 'public, max-age=31536000, immutable', 'versioned metadata never changes');
  const chunk = await request(server.url, `/feed/files/ab/${'ab'.repeat(32)}.zst`);
  assert.equal(chunk.status, 200);
  assert.equal(chunk.headers['cache-control'], 'public, max-age=31536000, immutable', 'a file\'s object is named by its hash: it never changes');

  const post = await request(server.url, target, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
});

test('feed files: traversal, encoded traversal, absolute paths, symlinks out, directories and dotfiles are all 404', async (t) => {
  const { feedDir, root, secretFile, reportsFile } = makeFeed(t);
  const server = await startServer(t, { feedDir, reportsFile });
  const attempts = [
    '/feed/../secret.txt',
    '/feed/targets/../../secret.txt',
    '/feed/%2e%2e/secret.txt',
    '/feed/%2E%2E/secret.txt',
    '/feed/..%2fsecret.txt',
    '/feed/%2e%2e%2fsecret.txt',
    '/feed/targets/..%2f..%2fsecret.txt',
    '/feed/..%5csecret.txt',
    '/feed/%252e%252e/secret.txt',
    `/feed/${secretFile}`,
    `/feed/${encodeURIComponent(secretFile)}`,
    `/feed/targets/escape-dir/${path.basename(secretFile)}`,
    '/feed/targets/escape',
    '/feed/.hidden',
    '/feed/%2ehidden',
    '/feed/targets',
    '/feed/targets/',
    '/feed/',
    '/feed/metadata/./timestamp.json',
    '/feed/metadata//timestamp.json',
    '/feed/%00',
    '/feed/%zz',
    `/feed/${path.relative(feedDir, root)}/secret.txt`,
  ];
  for (const attempt of attempts) {
    const reply = await request(server.url, attempt);
    assert.equal(reply.status, 404, attempt);
    assert.ok(!reply.body.toString().includes(SECRET), `${attempt} must not serve the secret`);
  }
  // A FIFO is refused at once (opening it must not wait for a writer).
  if (process.platform !== 'win32') {
    execFileSync('mkfifo', [path.join(feedDir, 'targets', 'fifo')]);
    assert.equal((await request(server.url, '/feed/targets/fifo')).status, 404);
  }
  // A symlink that stays inside the feed is fine.
  fs.symlinkSync('abc123.outpost.tar.gz', path.join(feedDir, 'targets', 'alias'));
  assert.equal((await request(server.url, '/feed/targets/alias')).status, 200);
  // Other paths are not the feed.
  for (const other of ['/', '/secret.txt', '/feedx', '/feed', '/health/x']) assert.equal((await request(server.url, other)).status, 404, other);
});

// ---------------------------------------------------------------------------------------------
// Error reports

test('reports: size limit (declared and streamed), content type, malformed JSON and schema errors are refused', async (t) => {
  const { feedDir, reportsFile } = makeFeed(t);
  const server = await startServer(t, { feedDir, reportsFile });
  const big = Buffer.alloc(REPORT_BODY_MAX_BYTES + 1, 0x20);

  const declared = await request(server.url, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: big });
  assert.equal(declared.status, 413);
  assert.match((json(declared) as { error: string }).error, /larger than 65536 bytes/);
  assert.equal(declared.headers.connection, 'close');

  // Chunked (no Content-Length): counted while reading, refused once past the limit.
  const streamed = await request(server.url, '/reports', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
    chunks: Array.from({ length: 5 }, () => Buffer.alloc(20_000, 0x20)),
  });
  assert.equal(streamed.status, 413);

  const type = await request(server.url, '/reports', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify(validReport()) });
  assert.equal(type.status, 415);
  assert.match((json(type) as { error: string }).error, /application\/json/);

  const malformed = await request(server.url, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: '{"id": ' });
  assert.equal(malformed.status, 400);
  assert.match((json(malformed) as { error: string }).error, /^malformed JSON/);

  const invalid = await postReport(server.url, { ...validReport(), code: 'not-a-code', extra: 1 });
  assert.equal(invalid.status, 400);
  const problem = (json(invalid) as { error: string }).error;
  assert.match(problem, /^not a valid error report: /);
  assert.match(problem, /code/);
  assert.match(problem, /extra/);

  assert.equal((await request(server.url, '/reports')).status, 405);
  assert.equal(fs.readFileSync(reportsFile, 'utf8'), '', 'nothing refused was stored');
  assert.equal(server.health().reports_stored, 0);
});

test('reports: a valid report is stored once; the same id again is a duplicate; concurrent copies store one line', async (t) => {
  const { feedDir, reportsFile } = makeFeed(t);
  const server = await startServer(t, { feedDir, reportsFile, now: () => new Date('2026-05-06T07:08:09.000Z') });
  const report = validReport();

  const first = await postReport(server.url, report);
  assert.equal(first.status, 202);
  assert.deepEqual(ReportAck.parse(json(first)), { accepted: true, duplicate: false });
  const again = await postReport(server.url, report);
  assert.equal(again.status, 202);
  assert.deepEqual(ReportAck.parse(json(again)), { accepted: true, duplicate: true });
  assert.deepEqual(
    lines(reportsFile).map((l) => JSON.parse(l)),
    [{ received_at: '2026-05-06T07:08:09.000Z', report }],
  );

  const racing = validReport();
  const replies = await Promise.all(Array.from({ length: 20 }, () => postReport(server.url, racing)));
  assert.ok(replies.every((r) => r.status === 202));
  assert.equal(replies.filter((r) => (json(r) as { duplicate: boolean }).duplicate === false).length, 1, 'exactly one copy is stored');
  assert.equal(lines(reportsFile).length, 2);
  assert.equal(server.health().reports_stored, 2);
  if (process.platform !== 'win32') assert.equal((fs.statSync(reportsFile).mode & 0o777).toString(8), '600');
});

test('reports: the ids survive a restart, and a torn last line is skipped and never glued to the next report', async (t) => {
  const { feedDir, reportsFile } = makeFeed(t);
  const report = validReport();
  const logged: string[] = [];
  const first = await FeedServer.start({ feedDir, reportsFile, host: '127.0.0.1', port: 0 });
  assert.equal((await postReport(first.url, report)).status, 202);
  await first.close();

  // A crash mid-write left half a line.
  fs.appendFileSync(reportsFile, '{"received_at":"2026-01-01T00:00:00.000Z","report":{"id":"8d0c');
  const second = await startServer(t, { feedDir, reportsFile, log: (line) => logged.push(line) });
  assert.equal(second.health().reports_stored, 1);
  assert.ok(logged.some((line) => /skipped 1 unreadable line/.test(line)), logged.join('\n'));
  assert.deepEqual(json(await postReport(second.url, report)), { accepted: true, duplicate: true }, 'still known after the restart');

  const next = validReport();
  assert.deepEqual(json(await postReport(second.url, next)), { accepted: true, duplicate: false });
  const stored = lines(reportsFile);
  assert.equal(stored.length, 3, 'the stored line, the torn one, the new one');
  assert.equal(JSON.parse(stored[2] as string).report.id, next.id, 'the new report is on its own line');
  assert.equal(JSON.parse(stored[0] as string).report.id, report.id, 'the file was appended to, never rewritten');
});

// ---------------------------------------------------------------------------------------------
// Health

test('GET /health: feed version, connected agents, stored reports', async (t) => {
  const { feedDir, reportsFile } = makeFeed(t);
  const server = await startServer(t, { feedDir, reportsFile });
  await postReport(server.url, validReport());
  const client = await PushClient.connect(wsUrl(server));
  t.after(() => client.terminate());

  const health = await request(server.url, '/health');
  assert.equal(health.status, 200);
  assert.equal(health.headers['content-type'], 'application/json');
  assert.deepEqual(json(health), { status: 'ok', feed_version: 3, agents_connected: 1, reports_stored: 1, reports_dropped: 0, redis: null });
  assert.equal((await request(server.url, '/health', { method: 'POST' })).status, 405);

  const emptyFeed = path.join(path.dirname(feedDir), 'empty-feed');
  fs.mkdirSync(emptyFeed);
  const empty = await startServer(t, { feedDir: emptyFeed, reportsFile: path.join(path.dirname(feedDir), 'other.jsonl') });
  assert.deepEqual(json(await request(empty.url, '/health')), { status: 'ok', feed_version: null, agents_connected: 0, reports_stored: 0, reports_dropped: 0, redis: null });
  assert.ok(fs.statSync(path.join(emptyFeed, 'metadata')).isDirectory(), 'the watched folder is created');
});

// ---------------------------------------------------------------------------------------------
// WebSocket push

test('push: each publish of a newer version is pushed once to a connected agent (the time it took reported); nothing at start-up or for a version not newer', async (t) => {
  const { feedDir, reportsFile } = makeFeed(t);
  const logged: string[] = [];
  const server = await startServer(t, { feedDir, reportsFile, log: (line) => logged.push(line) });
  const client = await PushClient.connect(wsUrl(server));
  t.after(() => client.terminate());

  // The version present at start (3) replaced by an older one, then rewritten: each read by the
  // watcher (feedVersion is set by the same read that would push), neither pushed. A push would be
  // on the wire before the one for 4 below, so that one arriving first proves there was none.
  publish(feedDir, 2);
  await until('the watcher read version 2', () => server.feedVersion === 2, 5_000);
  publish(feedDir, 3);
  await until('the watcher read version 3 again', () => server.feedVersion === 3, 5_000);

  const t0 = process.hrtime.bigint();
  publish(feedDir, 4);
  const message = await client.nextMessage(5_000);
  t.diagnostic(`publish to push received: ${(Number(message.at - t0) / 1e6).toFixed(1)} ms`);
  assert.deepEqual(UpdateRequired.parse(JSON.parse(message.text)), { type: 'agent:update_required', feed_version: 4 }, 'the first push is the one for 4');
  assert.equal(server.feedVersion, 4);
  assert.deepEqual(
    logged.filter((line) => /published/.test(line)),
    ['feed version 4 published: pushed to 1 agent(s)'],
    'no push at start-up, nor for 2 or 3',
  );

  // Replacing the whole metadata folder (which fs.watch on the old folder may not see) still pushes.
  const staged = path.join(feedDir, 'metadata.next');
  fs.cpSync(path.join(feedDir, 'metadata'), staged, { recursive: true });
  fs.writeFileSync(path.join(staged, 'timestamp.json'), timestampJson(5));
  fs.renameSync(path.join(feedDir, 'metadata'), path.join(feedDir, 'metadata.old'));
  fs.renameSync(staged, path.join(feedDir, 'metadata'));
  assert.equal(JSON.parse((await client.nextMessage(5_000, 1)).text).feed_version, 5);
  // A second push of 5 would come from a read of the feed made before the one that finds 6, so it
  // would arrive before the push of 6.
  publish(feedDir, 6);
  await client.nextMessage(5_000, 2);
  assert.deepEqual(
    client.messages.map((m) => UpdateRequired.parse(JSON.parse(m.text)).feed_version),
    [4, 5, 6],
    'one push per version',
  );
});

test('push: 1,000 connected agents each receive the push of one publish', async (t) => {
  const { feedDir, reportsFile } = makeFeed(t);
  const server = await startServer(t, { feedDir, reportsFile });
  const clients = await connectMany(wsUrl(server), 1_000);
  t.after(() => {
    for (const client of clients) client.terminate();
  });
  assert.equal(server.agentsConnected, 1_000);

  const t0 = process.hrtime.bigint();
  publish(feedDir, 7);
  const received = await Promise.all(clients.map((client) => client.nextMessage(10_000)));
  const lastMs = Math.max(...received.map((m) => Number(m.at - t0) / 1e6));
  t.diagnostic(`publish to the last of 1,000 agents notified: ${lastMs.toFixed(1)} ms`);
  for (const message of received) assert.deepEqual(JSON.parse(message.text), { type: 'agent:update_required', feed_version: 7 });
});

test('push: other upgrade paths are refused with 404; oversized frames from a client close it', async (t) => {
  const { feedDir, reportsFile } = makeFeed(t);
  const server = await startServer(t, { feedDir, reportsFile });

  const refused = new WebSocket(wsUrl(server, '/feed/ws'));
  const status = await new Promise<number>((resolve, reject) => {
    refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    refused.once('open', () => reject(new Error('upgrade on another path accepted')));
    refused.once('error', reject);
  });
  assert.equal(status, 404);
  refused.terminate();

  // At the socket level: answered 404 and closed by the server.
  const { port } = new URL(server.url);
  const raw = net.connect(Number(port), '127.0.0.1');
  raw.write('GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  let answer = '';
  raw.setEncoding('utf8').on('data', (chunk: string) => {
    answer += chunk;
  });
  await new Promise<void>((resolve) => raw.once('close', () => resolve()));
  assert.match(answer, /^HTTP\/1\.1 404 /);

  const client = await PushClient.connect(wsUrl(server));
  client.socket.send(Buffer.alloc(8 * 1024));
  await client.closed();
  await until('the server counting the closed connection out', () => server.agentsConnected === 0, 5_000);
});

test('push: an agent that stops answering pings is dropped; one that answers stays', async (t) => {
  const { feedDir, reportsFile } = makeFeed(t);
  const server = await startServer(t, { feedDir, reportsFile, pingIntervalMs: 100 });
  const live = await PushClient.connect(wsUrl(server));
  const silent = await PushClient.connect(wsUrl(server), { autoPong: false });
  t.after(() => live.terminate());
  await silent.closed();
  // Each round the server drops the clients that did not answer the last ping and pings the others.
  // The first ping counted from here may belong to the round before the one that dropped the silent
  // client; the third belongs at the earliest to the round after it: the live client was kept by the
  // round that dropped the silent one and by the next.
  let pingsToLive = 0;
  live.socket.on('ping', () => pingsToLive++);
  await until('three more pings to the live client', () => pingsToLive >= 3, 5_000);
  assert.equal(live.socket.readyState, WebSocket.OPEN);
  assert.equal(server.agentsConnected, 1);
});

test('close() with agents and keep-alive connections open resolves within 2 s and disconnects them', async (t) => {
  const { feedDir, reportsFile } = makeFeed(t);
  const server = await FeedServer.start({ feedDir, reportsFile, host: '127.0.0.1', port: 0 });
  const clients = await connectMany(wsUrl(server), 20);
  // A keep-alive HTTP connection left open.
  const keepAlive = net.connect(server.port, '127.0.0.1');
  keepAlive.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((resolve) => keepAlive.once('data', resolve));

  const t0 = Date.now();
  await server.close();
  await server.close();
  t.diagnostic(`close() took ${Date.now() - t0} ms`);
  assert.ok(Date.now() - t0 < 2_000);
  await Promise.all(clients.map((c) => c.closed()));
  await new Promise<void>((resolve) => (keepAlive.destroyed ? resolve() : keepAlive.once('close', () => resolve())));
});

// ---------------------------------------------------------------------------------------------
// The command

function startCli(args: readonly string[]): Child {
  return new Child(process.execPath, [SERVER_BIN, ...args], { ...process.env });
}

test('outpost-server: creates a missing feed, prints one listening line, serves, and exits 0 on SIGTERM and SIGINT', async (t) => {
  const root = tempDir(t, 'outpost-server-cli-');
  const feedDir = path.join(root, 'new-feed');
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const child = startCli(['--feed', feedDir, '--port', '0', '--reports', path.join(root, 'r.jsonl')]);
    t.after(() => child.kill('SIGKILL'));
    const [, base, port, dir] = await child.waitFor(LISTENING);
    assert.equal(dir, feedDir);
    assert.equal(base, 'http://127.0.0.1');
    assert.ok(fs.statSync(path.join(feedDir, 'metadata')).isDirectory());
    if (signal === 'SIGTERM') assert.match(child.stderr, /did not exist: created it/);
    assert.deepEqual(json(await request(`${base}:${port}`, '/health')), { status: 'ok', feed_version: null, agents_connected: 0, reports_stored: 0, reports_dropped: 0, redis: null });
    const ws = await PushClient.connect(`ws://127.0.0.1:${port}/ws`);
    child.kill(signal);
    const done = await child.finish(5_000);
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout.trim().split('\n').length, 1, 'exactly one line on stdout');
    await ws.closed();
  }
});

test('outpost-server: the reports file defaults to reports.jsonl in the current folder', async (t) => {
  const root = tempDir(t, 'outpost-server-cli-');
  const child = spawn(process.execPath, [SERVER_BIN, '--feed', 'feed', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => child.kill('SIGKILL'));
  let stdout = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (LISTENING.test(stdout)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before listening`)));
  });
  const port = LISTENING.exec(stdout)?.[2];
  assert.equal((await postReport(`http://127.0.0.1:${port}`, validReport())).status, 202);
  assert.equal(lines(path.join(root, 'reports.jsonl')).length, 1);
  assert.equal(LISTENING.exec(stdout)?.[3], path.join(fs.realpathSync(root), 'feed'));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('outpost-server: the limit flags reach the server: connections, origins, reports per minute, reports kept', async (t) => {
  const root = tempDir(t, 'outpost-server-cli-');
  const child = startCli([
    ...['--feed', path.join(root, 'feed'), '--port', '0', '--reports', path.join(root, 'r.jsonl')],
    ...['--max-connections', '1', '--allow-origin', 'http://localhost:3000', '--allow-origin', 'https://b.example'],
    ...['--reports-per-minute', '1', '--reports-max-count', '2'],
  ]);
  t.after(() => child.kill('SIGKILL'));
  const [, base, port] = await child.waitFor(LISTENING);
  const url = `${base}:${port}`;
  const page = await PushClient.connect(`ws://127.0.0.1:${port}/ws`, { headers: { Origin: 'http://localhost:3000' } });
  t.after(() => page.terminate());
  assert.deepEqual(await upgradeRefusal(`ws://127.0.0.1:${port}/ws`), { status: 503, body: 'server full: 1 connections' });
  const foreign = await request(url, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'https://c.example' }, body: JSON.stringify(validReport()) });
  assert.equal(foreign.status, 403);
  const fromB = await request(url, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'https://b.example' }, body: JSON.stringify(validReport({ agent_id: 'a' })) });
  assert.equal(fromB.status, 202);
  assert.equal((await postReport(url, validReport({ agent_id: 'a' }))).status, 429);
  for (const agent of ['b', 'c']) assert.equal((await postReport(url, validReport({ agent_id: agent }))).status, 202);
  assert.deepEqual(json(await request(url, '/health')), { status: 'ok', feed_version: null, agents_connected: 1, reports_stored: 2, reports_dropped: 1, redis: null });
  child.kill('SIGTERM');
  assert.equal((await child.finish(5_000)).code, 0);
});

test('outpost-server: bad arguments exit 64 with usage; --help; a file as feed exits 66; a busy port exits 69', async (t) => {
  const root = tempDir(t, 'outpost-server-cli-');
  const feedDir = path.join(root, 'feed');
  fs.mkdirSync(feedDir);
  const cases: [string[], RegExp][] = [
    [[], /--feed DIR is required/],
    [['--feed', feedDir, '--port', 'abc'], /--port must be a number/],
    [['--feed', feedDir, '--port', '70000'], /--port must be a number/],
    [['--feed', feedDir, '--bogus'], /Unknown option '--bogus'/],
    [['--feed', feedDir, 'extra'], /positional argument/],
    [['--feed', feedDir, '--reports', path.join(feedDir, 'targets', 'r.jsonl')], /inside the feed folder/],
    [['--feed', feedDir, '--max-connections', '0'], /--max-connections must be a whole number of at least 1 \(got "0"\)/],
    [['--feed', feedDir, '--reports-max-count', 'ten'], /--reports-max-count must be a whole number/],
    [['--feed', feedDir, '--reports-max-bytes', '1000'], /--reports-max-bytes must be a whole number of at least 1048576/],
    [['--feed', feedDir, '--reports-per-minute', '1.5'], /--reports-per-minute must be a whole number/],
    [['--feed', feedDir, '--allow-origin', 'https://console.example/app'], /--allow-origin must be an origin .* \(got "https:\/\/console\.example\/app"\)/],
  ];
  for (const [args, problem] of cases) {
    const done = await startCli(args).finish(5_000);
    assert.equal(done.code, 64, args.join(' '));
    assert.match(done.stderr, problem);
    assert.match(done.stderr, /Usage: outpost-server --feed DIR/);
    assert.equal(done.stdout, '');
  }
  const help = await startCli(['--help']).finish(5_000);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: outpost-server --feed DIR \[--port N\] \[--host HOST\] \[--reports FILE\] \[LIMITS\]/);
  for (const flag of ['--max-connections N', '--allow-origin URL', '--reports-max-count N', '--reports-max-bytes N', '--reports-per-minute N']) {
    assert.match(help.stdout, new RegExp(`^  ${flag} +\\S`, 'm'), `--help documents ${flag}`);
  }

  const notFolder = path.join(root, 'file');
  fs.writeFileSync(notFolder, '');
  const file = await startCli(['--feed', notFolder, '--port', '0']).finish(5_000);
  assert.equal(file.code, 66);
  assert.match(file.stderr, /is not a folder/);

  const busy = await startServer(t, { feedDir, reportsFile: path.join(root, 'a.jsonl') });
  const taken = await startCli(['--feed', feedDir, '--port', String(busy.port), '--reports', path.join(root, 'b.jsonl')]).finish(5_000);
  assert.equal(taken.code, 69);
  assert.match(taken.stderr, /cannot start: Cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
});

test('feed files: JSON is sent gzip-compressed to clients that accept it, and as it is to those that do not', async (t) => {
  const { feedDir, reportsFile } = makeFeed(t);
  const server = await startServer(t, { feedDir, reportsFile });
  publish(feedDir, 7);
  const original = fs.readFileSync(path.join(feedDir, 'metadata', 'timestamp.json'));
  const zipped = await request(server.url, '/feed/metadata/timestamp.json', { headers: { 'Accept-Encoding': 'gzip, br' } });
  assert.equal(zipped.status, 200);
  assert.equal(zipped.headers['content-encoding'], 'gzip');
  assert.equal(zipped.headers.vary, 'Accept-Encoding');
  assert.ok(gunzipSync(zipped.body).equals(original));
  const plain = await request(server.url, '/feed/metadata/timestamp.json', { headers: { 'Accept-Encoding': 'gzip;q=0, identity' } });
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.ok(plain.body.equals(original));
});
