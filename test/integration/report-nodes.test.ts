/**
 * Error reports across server nodes: outpost-server processes started with --redis store the reports
 * they take in one Redis stream (server/redis-reports.ts), each report once whichever node took it,
 * and `outpost-server failures` sums up that stream (or a single node's file). Debian's redis-server,
 * started here by the test itself where it must be stopped and started again on the same port.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { createClient } from '@redis/client';
import type { ErrorReport } from '../../app/common/reports.js';
import { FileReportStore } from '../../server/file-reports.js';
import { OriginPolicy } from '../../server/origins.js';
import { REPORT_FIELD, REPORTS_STREAM } from '../../server/redis-reports.js';
import { ReportsIntake } from '../../server/reports-intake.js';
import { freePort } from '../helpers/nginx.js';
import { REPO_ROOT, tempDir } from '../helpers/paths.js';
import { Child } from '../helpers/processes.js';
import { REDIS_SERVER, redisOrSkip, type ServerNode, startServerNode } from '../helpers/redis.js';
import { tierUnavailable } from '../helpers/tiers.js';
import { json, postReport, request, validReport } from '../server/helpers.js';

const SERVER_BIN = path.join(REPO_ROOT, 'bin', 'outpost-server.js');
const HOUR_MS = 3_600_000;

/** An outpost-server node storing reports in `redis`, once it has connected to it. `extra`: more flags. */
function startNode(t: TestContext, root: string, redis: string, extra: readonly string[] = []): Promise<ServerNode> {
  return startServerNode(t, redis, ['--feed', path.join(root, 'feed'), ...extra], [/reports: storing reports in the Redis stream outpost:reports/]);
}

/** A reading client of the test's own, closed when the test ends. */
async function redisClient(t: TestContext, url: string) {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  t.after(() => client.destroy());
  return client;
}

/** The report ids in the stream, in order. */
async function streamIds(client: Awaited<ReturnType<typeof redisClient>>): Promise<string[]> {
  const entries = (await client.xRange(REPORTS_STREAM, '-', '+')) ?? [];
  return entries.map((entry) => (JSON.parse(String(entry.message[REPORT_FIELD])) as ErrorReport).id);
}

async function post(node: ServerNode, report: ErrorReport): Promise<{ status: number; duplicate?: boolean }> {
  const reply = await postReport(node.url, report);
  return reply.status === 202 ? { status: 202, duplicate: (json(reply) as { duplicate: boolean }).duplicate } : { status: reply.status };
}

/** `outpost-server failures ARGS`, run to its end. */
function failures(args: readonly string[]) {
  return new Child(process.execPath, [SERVER_BIN, 'failures', ...args], { ...process.env }).finish();
}

/** `failures --json` on `store` (--redis URL or --reports FILE): the default hour holds the recent reports' groups; --since 3h adds the old ones. */
async function assertWindows(store: readonly string[]): Promise<void> {
  const hour = await failures([...store, '--json']);
  assert.equal(hour.code, 0, hour.stderr);
  assert.deepEqual(groupsOf(hour.stdout), RECENT_GROUPS);
  const wider = await failures([...store, '--since', '3h', '--json']);
  assert.deepEqual(groupsOf(wider.stdout), WITH_OLD_GROUPS);
}

interface Group {
  readonly code: string;
  readonly agent_version: string;
  readonly reports: number;
  readonly agents: number;
}

/** The groups of `failures --json`, without their times, in a stable order (ties in count may come in either order). */
function groupsOf(stdout: string): Group[] {
  const summary = JSON.parse(stdout) as { groups: (Group & { last_received: string })[] };
  return summary.groups.map(({ code, agent_version, reports, agents }) => ({ code, agent_version, reports, agents })).sort((a, b) => b.reports - a.reports || `${a.code} ${a.agent_version}`.localeCompare(`${b.code} ${b.agent_version}`));
}

/**
 * What both stores hold in the failures tests, newest first: 3 ERR_A from 1.0.0 (2 agents), 1 ERR_A
 * from 1.1.0, 1 ERR_B, and 2 EVT_ events that are not failures.
 */
function recentReports(): ErrorReport[] {
  return [
    validReport({ code: 'ERR_A', agent_version: '1.0.0', agent_id: 'agent-1' }),
    validReport({ code: 'ERR_A', agent_version: '1.0.0', agent_id: 'agent-1' }),
    validReport({ code: 'ERR_A', agent_version: '1.0.0', agent_id: 'agent-2' }),
    validReport({ code: 'ERR_A', agent_version: '1.1.0', agent_id: 'agent-1' }),
    validReport({ code: 'ERR_B', agent_version: '1.0.0', agent_id: 'agent-3' }),
    validReport({ code: 'EVT_UPDATE_SUCCEEDED', agent_version: '1.1.0', agent_id: 'agent-1' }),
    validReport({ code: 'EVT_UPDATE_SUCCEEDED', agent_version: '1.1.0', agent_id: 'agent-2' }),
  ];
}

const RECENT_GROUPS: Group[] = [
  { code: 'ERR_A', agent_version: '1.0.0', reports: 3, agents: 2 },
  { code: 'ERR_A', agent_version: '1.1.0', reports: 1, agents: 1 },
  { code: 'ERR_B', agent_version: '1.0.0', reports: 1, agents: 1 },
];

/** Two hours old: ERR_A from 1.0.0 once more, and ERR_OLD, both outside the default hour. */
function oldReports(): ErrorReport[] {
  return [validReport({ code: 'ERR_A', agent_version: '1.0.0', agent_id: 'agent-9' }), validReport({ code: 'ERR_OLD', agent_version: '0.9.0', agent_id: 'agent-9' })];
}

const WITH_OLD_GROUPS: Group[] = [
  { code: 'ERR_A', agent_version: '1.0.0', reports: 4, agents: 3 },
  { code: 'ERR_A', agent_version: '1.1.0', reports: 1, agents: 1 },
  { code: 'ERR_B', agent_version: '1.0.0', reports: 1, agents: 1 },
  { code: 'ERR_OLD', agent_version: '0.9.0', reports: 1, agents: 1 },
];

test('three nodes on one Redis: reports posted to any node, the same id to several (concurrently too), are stored exactly once each; a restarted node still answers duplicates', async (t) => {
  const redis = await redisOrSkip(t);
  if (!redis) return;
  const root = tempDir(t, 'outpost-report-nodes-');
  // One node also given --reports: ignored with --redis, and it says so.
  const nodes = await Promise.all([startNode(t, root, redis, ['--reports', path.join(root, 'unused.jsonl')]), startNode(t, root, redis), startNode(t, root, redis)]);
  const [first, second, third] = nodes as [ServerNode, ServerNode, ServerNode];
  assert.match(first.child.stderr, /--reports ignored: with --redis, reports go to the Redis stream/);
  assert.equal(fs.existsSync(path.join(root, 'unused.jsonl')), false, 'no reports file with --redis');

  const one = nodes.map(() => validReport());
  const answers = await Promise.all(nodes.map((node, i) => post(node, one[i] as ErrorReport)));
  assert.deepEqual(answers, nodes.map(() => ({ status: 202, duplicate: false })));

  // The same id to two nodes, then to all three, at once: one of them stores it, the others answer duplicate.
  const raced = Array.from({ length: 10 }, () => validReport());
  for (const [i, report] of raced.entries()) {
    const targets = i % 2 === 0 ? [first, second] : nodes;
    const replies = await Promise.all(targets.map((node) => post(node, report)));
    assert.ok(
      replies.every((r) => r.status === 202),
      JSON.stringify(replies),
    );
    assert.equal(replies.filter((r) => r.duplicate === false).length, 1, `exactly one node stored ${report.id}: ${JSON.stringify(replies)}`);
  }
  // One after another, to another node than the one that stored it.
  assert.deepEqual(await post(third, one[0] as ErrorReport), { status: 202, duplicate: true });

  const client = await redisClient(t, redis);
  const expected = [...one, ...raced].map((r) => r.id);
  const stored = await streamIds(client);
  assert.equal(stored.length, expected.length, 'one entry per report');
  assert.deepEqual([...stored].sort(), [...expected].sort());
  const health = (await (await fetch(`${third.url}/health`)).json()) as { reports_stored: number; reports_dropped: number };
  assert.equal(health.reports_stored, expected.length, "/health's reports_stored is the stream's length");
  assert.equal(health.reports_dropped, 0);

  second.child.kill('SIGTERM');
  assert.equal((await second.child.finish()).code, 0);
  const restarted = await startNode(t, root, redis);
  assert.deepEqual(await post(restarted, one[1] as ErrorReport), { status: 202, duplicate: true }, 'a duplicate after a restart');
  assert.deepEqual(await post(restarted, raced[3] as ErrorReport), { status: 202, duplicate: true });
  const fresh = validReport();
  assert.deepEqual(await post(restarted, fresh), { status: 202, duplicate: false });
  assert.deepEqual((await streamIds(client)).sort(), [...expected, fresh.id].sort());
});

/** A redis-server the test stops and starts again on `port`, persisting nothing (so it comes back empty). */
function startRedis(t: TestContext, port: number, dir: string): Child {
  const redis = new Child(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], process.env);
  t.after(async () => {
    redis.kill('SIGTERM');
    await redis.finish(5_000);
  });
  return redis;
}

test('Redis stopped: the node answers reports 503 with Retry-After (the agent keeps them), stays responsive, says so once, /health shows it; Redis back on its port: reports are accepted again', async (t) => {
  if (!fs.existsSync(REDIS_SERVER)) {
    tierUnavailable(t, 'redis', `${REDIS_SERVER} not found`, 'apt-get install redis-server');
    return;
  }
  const port = await freePort();
  const dir = tempDir(t, 'outpost-redis-');
  const redis = startRedis(t, port, dir);
  await redis.waitFor(/Ready to accept connections/);
  const url = `redis://127.0.0.1:${port}`;
  const root = tempDir(t, 'outpost-report-nodes-');
  const node = await startNode(t, root, url);
  assert.deepEqual(await post(node, validReport()), { status: 202, duplicate: false });
  assert.equal(await redisState(node), 'ready');

  redis.kill('SIGTERM');
  await redis.finish(5_000);
  const kept = validReport();
  for (let i = 0; i < 3; i++) {
    const reply = await postReport(node.url, i === 0 ? kept : validReport());
    assert.equal(reply.status, 503);
    assert.match(String(reply.headers['retry-after']), /^\d+$/);
    assert.match((json(reply) as { error: string }).error, /the report store \(Redis at redis:\/\/127\.0\.0\.1:\d+\) is unavailable .*send it again after \d+ s/);
    assert.equal(await redisState(node), 'unreachable', 'the node still answers, and says why reports are refused');
  }
  // One line for the node (its publishes and reports alike), saying what waits meanwhile.
  assert.equal(node.child.stderr.match(/redis: .* unreachable .*; meanwhile .*reports are answered 503/g)?.length, 1, `said once:\n${node.child.stderr}`);

  const back = startRedis(t, port, dir);
  await back.waitFor(/Ready to accept connections/);
  // The client reconnects on its own schedule (backing off up to a few seconds); then the agent's re-send is taken.
  await node.child.waitFor(/redis: .* reachable again/, 30_000);
  assert.equal(await redisState(node), 'ready');
  assert.deepEqual(await post(node, kept), { status: 202, duplicate: false }, 'stored now: it was not before');
  assert.deepEqual(await post(node, kept), { status: 202, duplicate: true });
  const client = await redisClient(t, url);
  assert.deepEqual(await streamIds(client), [kept.id], 'Redis came back empty (no persistence): only what was stored since');
});

/** GET /health's `redis`: the node's link to Redis. */
async function redisState(node: ServerNode): Promise<unknown> {
  const health = await fetch(`${node.url}/health`);
  assert.equal(health.status, 200);
  return ((await health.json()) as { redis: unknown }).redis;
}

test('outpost-server failures --redis: ERR_ reports of the last hour by code and version, with distinct agents; EVT_ reports and older ones do not count; --since widens the window', async (t) => {
  const redis = await redisOrSkip(t);
  if (!redis) return;
  const client = await redisClient(t, redis);
  // Nodes stamp entries with Redis's clock (XADD *), so a report received two hours ago can only be
  // written here, with an explicit id; and first, since a stream's ids only grow.
  const twoHoursAgo = Date.now() - 2 * HOUR_MS;
  for (const [i, report] of oldReports().entries()) await client.xAdd(REPORTS_STREAM, `${twoHoursAgo}-${i}`, { [REPORT_FIELD]: JSON.stringify(report) });

  const root = tempDir(t, 'outpost-report-nodes-');
  const nodes = await Promise.all([startNode(t, root, redis), startNode(t, root, redis)]);
  const recent = recentReports();
  for (const [i, report] of recent.entries()) assert.equal((await post(nodes[i % 2] as ServerNode, report)).status, 202);
  // A duplicate through the other node counts once.
  assert.deepEqual(await post(nodes[1] as ServerNode, recent[0] as ErrorReport), { status: 202, duplicate: true });

  await assertWindows(['--redis', redis]);

  const table = await failures(['--redis', redis]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^failures received since \S+: 5 report\(s\) in 3 group\(s\)$/);
  assert.match(lines[1] ?? '', /^CODE\s+VERSION\s+REPORTS\s+AGENTS\s+LAST RECEIVED$/);
  assert.match(lines[2] ?? '', /^ERR_A\s+1\.0\.0\s+3\s+2\s+\d{4}-\d\d-\d\dT/, 'the most reported first');
  assert.equal(lines.length, 5);
  assert.doesNotMatch(table.stdout, /EVT_|ERR_OLD/);

  const down = await failures(['--redis', `redis://127.0.0.1:${await freePort()}`]);
  assert.equal(down.code, 69, 'Redis unreachable');
  assert.match(down.stderr, /cannot read the reports from Redis at redis:\/\/127\.0\.0\.1:\d+/);
  const bad = await failures(['--redis', redis, '--since', 'an hour']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /--since must be a duration such as 30m, 1h or 7d/);
});

test('outpost-server failures --reports: the same summary from a single node\'s file; a missing file exits 66', async (t) => {
  const root = tempDir(t, 'outpost-report-file-');
  const reportsFile = path.join(root, 'reports.jsonl');
  // Lines as the file store writes them, received two hours ago (before the node opens the file).
  const twoHoursAgo = new Date(Date.now() - 2 * HOUR_MS).toISOString();
  fs.writeFileSync(reportsFile, oldReports().map((report) => `${JSON.stringify({ received_at: twoHoursAgo, report })}\n`).join(''));
  const child = new Child(process.execPath, [SERVER_BIN, '--feed', path.join(root, 'feed'), '--port', '0', '--reports', reportsFile], { ...process.env });
  t.after(async () => {
    child.kill('SIGTERM');
    await child.finish();
  });
  const [, port] = await child.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
  const node = { child, port: Number(port), url: `http://127.0.0.1:${port}` };
  const recent = recentReports();
  for (const report of recent) assert.equal((await post(node, report)).status, 202);
  assert.deepEqual(await post(node, recent[1] as ErrorReport), { status: 202, duplicate: true });

  // Read while the server runs, as an operator would.
  await assertWindows(['--reports', reportsFile]);
  const table = await failures(['--reports', reportsFile]);
  assert.match(table.stdout, /^ERR_A\s+1\.0\.0\s+3\s+2\s/m);

  const missing = await failures(['--reports', path.join(root, `${randomUUID()}.jsonl`)]);
  assert.equal(missing.code, 66);
  assert.match(missing.stderr, /cannot read the reports file .* it does not exist/);
  const both = await failures(['--reports', reportsFile, '--redis', 'redis://127.0.0.1:6379']);
  assert.equal(both.code, 64);
});

test('an authenticated caller (handle with an agent id): a report naming another agent is refused 403; the rate limit is keyed by the caller, not by what the report says', async (t) => {
  const root = tempDir(t, 'outpost-report-auth-');
  const store = await FileReportStore.open({ file: path.join(root, 'reports.jsonl'), log: () => undefined, now: () => new Date(), maxReports: 100, maxBytes: 1024 * 1024 });
  const intake = new ReportsIntake({ store, log: () => undefined, now: () => new Date(), perAgentPerMinute: 2, origins: new OriginPolicy([]) });
  // What server.ts does once it has authenticated the caller: the caller named in a header here.
  const server = http.createServer((req, res) => void intake.handle(req, res, typeof req.headers['x-agent'] === 'string' ? req.headers['x-agent'] : undefined));
  t.after(async () => {
    server.close();
    await intake.close();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const as = async (caller: string | undefined, report: ErrorReport) => {
    const reply = await request(`http://127.0.0.1:${port}`, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json', ...(caller && { 'X-Agent': caller }) }, body: JSON.stringify(report) });
    return { status: reply.status, body: json(reply) as { error?: string } };
  };

  assert.equal((await as('agent-1', validReport({ agent_id: 'agent-1' }))).status, 202);
  const other = await as('agent-1', validReport({ agent_id: 'agent-2' }));
  assert.equal(other.status, 403);
  assert.match(other.body.error ?? '', /the report names agent agent-2, but the request is authenticated as agent agent-1/);
  // agent-1 has used its 2 a minute (the refused one counts): a report naming agent-3 is still agent-1's.
  assert.equal((await as('agent-1', validReport({ agent_id: 'agent-3' }))).status, 429);
  // Unauthenticated, the report's agent_id is the key, as before: agent-3 has its own 2.
  assert.equal((await as(undefined, validReport({ agent_id: 'agent-3' }))).status, 202);
  assert.equal(store.stored, 2, 'only the accepted reports were stored');
});
