import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { zstdCompressSync } from 'node:zlib';
import { chunkBuffer } from '../../app/base/chunking.js';
import { storagePaths } from '../../app/base/storage-layout.js';
import { objectPath } from '../../app/common/release.js';
import { AgentClient } from '../../app/main/core/agent-client.js';
import { ChunkStore } from '../../app/main/core/update/chunk-store.js';
import { createPlatform } from '../../app/main/platform/index.js';
import { bufferedReports, logOf, statusOf } from '../helpers/agent.js';
import { type Child, startRunningAgent } from '../helpers/processes.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ForwardProxy } from '../helpers/forward-proxy.js';
import { framesOf, ReleaseLab, treeOf } from '../helpers/release-lab.js';
import { until } from '../helpers/wait.js';
import { DEFAULT_CHUNKING } from '../../tools/release/release-writer.js';

const V1 = { 'main.js': 'console.log("v1")\n', 'lib/util.js': 'exports.x = 1\n'.repeat(2000), 'assets/logo.bin': Buffer.alloc(64 * 1024, 7) };
const V2 = { ...V1, 'main.js': 'console.log("v2")\n' };

/** v1 installed and published; an agent running as v1 against the lab's server. */
async function installedV1(t: { after: (fn: () => void) => void }, lab: ReleaseLab, home: string) {
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  await until('the first check', () => logOf(home).includes('no update: 1.0.0 is the version channel stable offers'));
  return { install, agent };
}

async function stop(agent: Child): Promise<void> {
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
}

test('a release pushed over WebSocket reaches the agent (the push logged; the time it took reported, not bounded); only the two changed files are downloaded; the staged tree is the release, byte for byte; checked again or after a restart, nothing is downloaded twice; a damaged or vanished staged copy is staged afresh', async (t) => {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const home = lab.home();
  const { install, agent } = await installedV1(t, lab, home);

  const v2 = lab.app('1.1.0', V2);
  const published = Date.now();
  lab.publish(v2, '1.1.0');
  await until('the push', () => logOf(home).includes('push: agent:update_required'), 5_000);
  const heardAfter = Date.now() - published;
  t.diagnostic(`publish -> push heard and logged within ${heardAfter} ms (including the publish command)`);
  await until('the staged release', () => logOf(home).includes('1.1.0 staged complete and verified'));

  const log = logOf(home);
  assert.match(log, /update 1\.0\.0 -> 1\.1\.0: 4 files, 2 unchanged, 2 chunks to download/, 'main.js and package.json changed (one chunk each); nothing else is fetched');
  assert.match(log, /state CHECKING_UPDATE -> UPDATING_DOWNLOADING.*\n(.*\n)*.*UPDATING_DOWNLOADING -> UPDATING_VERIFYING.*\n(.*\n)*.*UPDATING_VERIFYING -> UPDATING_STAGING/);
  assert.match(log, /UPDATING_DOWNLOADING: 100% \(\d+ of \d+ bytes\)/, 'progress is logged');
  assert.deepEqual(treeOf(path.join(home, 'updates', '1.1.0')), treeOf(v2));
  assert.equal(fs.existsSync(path.join(home, 'updates', 'chunks')), false, 'verified downloads are removed once staged');

  const status = await statusOf(home, install);
  const { last_download, ...update } = status.update;
  assert.deepEqual(update, { offered: '1.1.0', staged: '1.1.0', last_error: null });
  assert.equal(last_download?.version, '1.1.0');
  assert.equal(last_download?.release_bytes, Object.values(treeOf(v2)).reduce((n, b64) => n + Buffer.from(b64, 'base64').length, 0));
  assert.ok(last_download && last_download.downloaded_bytes > 0 && last_download.downloaded_bytes < 4096, `the manifest and two small chunks: ${last_download?.downloaded_bytes} bytes`);
  assert.ok(status.last_update_check !== null);

  // Another check (asked over IPC), and one after a restart, find it staged: nothing is downloaded twice.
  const alreadyStaged = () => logOf(home).match(/1\.1\.0 is already staged \(checked again\); nothing to download/g)?.length ?? 0;
  const asked = await new AgentClient(createPlatform(), { ...process.env, OUTPOST_HOME: home }).send('check_for_update', 5_000);
  assert.equal(asked.status, 'ok');
  assert.equal(asked.message, 'check started');
  await until('the check asked for', () => alreadyStaged() === 1);
  await stop(agent);
  const again = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => again.kill('SIGKILL'));
  await until('the check after restart', () => alreadyStaged() === 2);
  assert.equal(logOf(home).match(/to download in \d+ requests? \(/g)?.length, 1, 'one download plan in all');
  await stop(again);

  // A staged copy damaged while it waited is deleted and staged afresh, not handed over.
  fs.appendFileSync(path.join(home, 'updates', '1.1.0', 'main.js'), '// changed on disk\n');
  const third = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => third.kill('SIGKILL'));
  await until('the fresh staging', () => logOf(home).match(/1\.1\.0 staged complete and verified/g)?.length === 2);
  assert.match(logOf(home), /the staged 1\.1\.0 is damaged \(main\.js does not match its signed size and SHA-256\); deleting it and staging it afresh/);
  assert.deepEqual(treeOf(path.join(home, 'updates', '1.1.0')), treeOf(v2));
  await stop(third);

  // A staged copy that vanished (staged.json still names it) is forgotten and staged afresh.
  fs.rmSync(path.join(home, 'updates', '1.1.0'), { recursive: true });
  const fourth = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => fourth.kill('SIGKILL'));
  await until('staging after the vanishing', () => logOf(home).match(/1\.1\.0 staged complete and verified/g)?.length === 3);
  assert.deepEqual(treeOf(path.join(home, 'updates', '1.1.0')), treeOf(v2));
  await stop(fourth);
  assert.equal(lab.reports().length, 0, 'nothing went wrong, nothing was reported');
});

test('with the WebSocket blocked, polling finds the release', async (t) => {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  // A port where nothing listens: the push channel fails and keeps retrying with backoff.
  const closed = await freePort();
  const home = lab.home({ wsUrl: `ws://127.0.0.1:${closed}/ws`, pollS: 1 });
  const { install, agent } = await installedV1(t, lab, home);
  lab.publish(lab.app('1.1.0', V2), '1.1.0');
  await until('the staged release', () => logOf(home).includes('1.1.0 staged complete and verified'));
  const log = logOf(home);
  assert.match(log, /push channel error/);
  assert.doesNotMatch(log, /push: agent:update_required/);
  assert.match(log, /update check \(poll\)/);
  assert.equal((await statusOf(home, install)).update.staged, '1.1.0');
  await stop(agent);
});

test('its server gone and back: the agent reconnects within its window and checks once, so a release published while the push channel was down is staged without waiting for the poll', async (t) => {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const port = lab.port;
  const home = lab.home({ update: { reconnect_window_s: 2 } });
  const { agent } = await installedV1(t, lab, home);
  await until('the push channel open', () => logOf(home).includes('push channel open'));
  await lab.stopServer();
  lab.publish(lab.app('1.1.0', V2), '1.1.0');
  const down = Date.now();
  await lab.startServer(port);
  await until('the staged release', () => logOf(home).includes('1.1.0 staged complete and verified'));
  t.diagnostic(`staged ${Date.now() - down} ms after the server went down (window 2 s, then doubling)`);
  const log = logOf(home);
  assert.match(log, /push channel back: checking once for a release published while it was down/);
  assert.match(log, /update check \(reconnect\)/);
  assert.doesNotMatch(log, /update check \(poll\)/, 'not the poll: an hour away');
  await stop(agent);
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// ---- Attacks: each refused with a report, nothing staged ---------------------------------------

/** Publishes v1 (installed) and v2, lets `spoil` break the feed, then starts an agent: its first check must refuse. */
async function expectRefusal(
  t: { after: (fn: () => void) => void },
  spoil: (lab: ReleaseLab) => void | Promise<void>,
  expected: { code: string; message: RegExp },
  options: { trustFile?: (lab: ReleaseLab) => string; publishV2?: boolean; update?: Record<string, unknown> } = {},
): Promise<{ lab: ReleaseLab; home: string }> {
  const lab = new ReleaseLab(t);
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  if (options.publishV2 !== false) lab.publish(lab.app('1.1.0', V2), '1.1.0');
  await spoil(lab);
  await lab.startServer();
  const home = lab.home({ ...(options.trustFile && { trustFile: options.trustFile(lab) }), ...(options.update && { update: options.update }) });
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  const report = await until('the report at the server', () => lab.reports().find((r) => r.code === expected.code));
  assert.match(report.message, expected.message);
  assert.equal(report.context.trigger, 'start');
  assert.equal(fs.existsSync(path.join(home, 'updates', '1.1.0')), false, 'nothing staged');
  assert.equal(fs.existsSync(path.join(home, 'updates', '1.1.0.partial')), false, 'no partial tree left');
  await until('IDLE again', () => /update failed; will retry/.test(logOf(home)));
  const status = await statusOf(home, install);
  assert.equal(status.state, 'IDLE');
  assert.equal(status.update.staged, null);
  assert.equal(status.update.last_error?.code, expected.code);
  await stop(agent);
  return { lab, home };
}

/** The feed's object of a file of one chunk: that chunk's frame. */
function storedChunk(lab: ReleaseLab, content: string | Buffer): string {
  const sha = createHash('sha256').update(content).digest('hex');
  const file = path.join(lab.feed, objectPath('files', sha));
  assert.ok(fs.existsSync(file), `an object for ${sha}`);
  return file;
}

test('attack: a tampered file (other bytes of the same length, compressed as the feed does) is refused after three tries', async (t) => {
  const evil = 'console.log("ev")\n';
  assert.equal(evil.length, V2['main.js'].length);
  const { home } = await expectRefusal(t, (lab) => fs.writeFileSync(storedChunk(lab, V2['main.js']), zstdCompressSync(evil)), {
    code: 'ERR_UPDATE_VERIFY',
    message: /the chunk [0-9a-f]{12} does not match its signed SHA-256 \(tampered, or corrupted on the way\)/,
  });
  assert.equal(logOf(home).match(/failed \(attempt \d of 3\), asking again/g)?.length, 2, 'asked for again twice: damage on the way may not repeat');
});

test('attack: a chunk longer than it can be (endless data) is cut off and refused', async (t) => {
  await expectRefusal(t, (lab) => fs.appendFileSync(storedChunk(lab, V2['main.js']), Buffer.alloc(1024 * 1024, 1)), {
    code: 'ERR_UPDATE_VERIFY',
    message: /the answer for \S+\/files\/.* was longer than the \d+ bytes allowed for it \(endless data\?\), so it was cut off there and not used/,
  });
});

test('a chunk missing from the feed is reported as such (HTTP 404, the release incomplete on the server), and nothing is staged', async (t) => {
  await expectRefusal(t, (lab) => fs.rmSync(storedChunk(lab, V2['main.js'])), {
    code: 'ERR_UPDATE_DOWNLOAD',
    message: /Download of \S+\/files\/\S+ failed: the feed does not have it \(HTTP 404\): the release is incomplete on the server/,
  });
});

test('attack: a wrong signature on the metadata is refused', async (t) => {
  await expectRefusal(
    t,
    (lab) => {
      const file = path.join(lab.feed, 'metadata', 'timestamp.json');
      const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
      const sig: string = doc.signatures[0].sig;
      doc.signatures[0].sig = `${sig[0] === 'a' ? 'b' : 'a'}${sig.slice(1)}`;
      fs.writeFileSync(file, JSON.stringify(doc));
    },
    { code: 'ERR_UPDATE_VERIFY', message: /the feed metadata did not verify/ },
  );
});

test('attack: a missing signature is refused', async (t) => {
  await expectRefusal(
    t,
    (lab) => {
      const file = path.join(lab.feed, 'metadata', '2.snapshot.json');
      const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
      doc.signatures = [];
      fs.writeFileSync(file, JSON.stringify(doc));
    },
    { code: 'ERR_UPDATE_VERIFY', message: /the feed metadata did not verify/ },
  );
});

test('attack: metadata signed by keys the agent does not trust is refused', async (t) => {
  await expectRefusal(
    t,
    () => undefined,
    { code: 'ERR_UPDATE_VERIFY', message: /the feed metadata did not verify/ },
    {
      trustFile: (lab) => {
        const other = path.join(lab.root, 'other-keys');
        lab.release(['keygen', '--out', other]);
        return path.join(other, 'root.json');
      },
    },
  );
});

test('attack: expired metadata (a frozen feed) is refused', async (t) => {
  const lab = new ReleaseLab(t);
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0', ['--expires', '2020-01-01T00:00:00Z']);
  await lab.startServer();
  const home = lab.home();
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  const report = await until('the report', () => lab.reports().find((r) => r.code === 'ERR_UPDATE_VERIFY'));
  assert.match(report.message, /did not verify: .*expired/i);
  await stop(agent);
});

test('attack: an older version offered (rollback) is refused', async (t) => {
  await expectRefusal(
    t,
    (lab) => {
      lab.publish(lab.app('0.9.0', V1), '0.9.0', ['--allow-older']);
    },
    { code: 'ERR_UPDATE_POLICY', message: /offers 0\.9\.0, older than the running 1\.0\.0; downgrades are not allowed/ },
  );
});

test('attack: metadata from two releases mixed is refused', async (t) => {
  await expectRefusal(
    t,
    (lab) => {
      // The current snapshot (version 2) with the targets of release 1 under the name of release 2.
      const metadata = path.join(lab.feed, 'metadata');
      fs.copyFileSync(path.join(metadata, '1.targets.json'), path.join(metadata, '2.targets.json'));
    },
    { code: 'ERR_UPDATE_VERIFY', message: /the feed metadata did not verify/ },
  );
});

test('attack: an old timestamp served again (metadata rollback) is refused', async (t) => {
  const lab = new ReleaseLab(t);
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  const oldTimestamp = fs.readFileSync(path.join(lab.feed, 'metadata', 'timestamp.json'));
  lab.publish(lab.app('1.0.1', V1), '1.0.1', ['--rollout', '0']);
  await lab.startServer();
  const home = lab.home({ pollS: 1 });
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  await until('a check of feed version 2', () => /no update: 1\.0\.1 is rolled out to 0%/.test(logOf(home)));
  fs.writeFileSync(path.join(lab.feed, 'metadata', 'timestamp.json'), oldTimestamp);
  const report = await until('the report', () => lab.reports().find((r) => r.code === 'ERR_UPDATE_VERIFY'));
  assert.match(report.message, /did not verify/);
  await stop(agent);
});

for (const [name, bad] of [
  ['a target path with ..', '../escaped.js'],
  ['an absolute target path', '/tmp/outpost-absolute.js'],
] as const) {
  test(`attack: ${name} is refused, and nothing is written outside`, async (t) => {
    const content = Buffer.from('evil\n');
    const { home } = await expectRefusal(
      t,
      async (lab) => {
        const { FeedRepo } = await import('../../tools/release/feed-repo.js');
        const { loadKeys, ONLINE_ROLES } = await import('../../tools/release/keys.js');
        const manifest = {
          version: '1.1.0',
          files: [{ path: bad, size: content.length, sha256: createHash('sha256').update(content).digest('hex'), mode: 0o644 }],
        };
        await FeedRepo.open({ feedDir: lab.feed, keys: loadKeys(lab.keys, ONLINE_ROLES, 'the test'), now: () => new Date() }, null).publishUnchecked(manifest, [content], 'stable');
      },
      { code: 'ERR_UPDATE_VERIFY', message: /is not a valid document/ },
      { publishV2: false },
    );
    assert.equal(fs.existsSync(path.join(home, 'updates', 'escaped.js')), false);
    assert.equal(fs.existsSync('/tmp/outpost-absolute.js'), false);
  });
}

test('a symlink: the release tool refuses one, and the agent never copies an installed file through one', async (t) => {
  const lab = new ReleaseLab(t);
  const withLink = lab.app('1.1.0', V2);
  fs.symlinkSync('/etc/hostname', path.join(withLink, 'link.txt'));
  assert.throws(() => lab.publish(withLink, '1.1.0'), /link\.txt is not a regular file/);

  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  lab.publish(lab.app('1.1.0', V2), '1.1.0');
  // The installed copy of an unchanged file is now a link to a file with the same bytes.
  const outside = path.join(lab.root, 'outside-util.js');
  fs.writeFileSync(outside, V1['lib/util.js']);
  fs.rmSync(path.join(install, 'lib', 'util.js'));
  fs.symlinkSync(outside, path.join(install, 'lib', 'util.js'));
  await lab.startServer();
  const home = lab.home();
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  await until('the staged release', () => logOf(home).includes('1.1.0 staged complete and verified'));
  const chunksOfUtil = chunkBuffer(Buffer.from(V1['lib/util.js']), DEFAULT_CHUNKING).length;
  assert.match(logOf(home), new RegExp(`4 files, 1 unchanged, ${2 + chunksOfUtil} chunks to download`), 'the linked file is downloaded, not followed');
  assert.ok(fs.lstatSync(path.join(home, 'updates', '1.1.0', 'lib', 'util.js')).isFile());
  await stop(agent);
});

// ---- A bad network, a full disk, a dead backend -------------------------------------------------

/** v2 adds one big, incompressible file of many chunks: what the network faults hit. */
const BIG = randomBytes(512 * 1024);
const BIG_FRAMES = framesOf(BIG);
const BIG_OBJECT = objectPath('files', createHash('sha256').update(BIG).digest('hex'));

async function behindProxy(t: { after: (fn: () => void) => void }, update: Record<string, unknown> = {}) {
  const lab = new ReleaseLab(t);
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  lab.publish(lab.app('1.1.0', { ...V1, 'assets/big.bin': BIG }), '1.1.0');
  await lab.startServer();
  const proxy = await FaultProxy.start(lab.url);
  t.after(() => void proxy.close());
  const home = lab.home({ url: proxy.url, wsUrl: `${lab.url.replace('http', 'ws')}/ws`, update });
  return { lab, install, proxy, home };
}

/** The requests for BIG's object: where each asked to start, and the bytes it got. */
function bigRequests(proxy: FaultProxy): Array<{ from: number; bytes: number }> {
  return proxy.seen.filter((r) => r.path.endsWith(BIG_OBJECT)).map((r) => ({ from: Number(/^bytes=(\d+)-/.exec(r.range ?? '')?.[1] ?? Number.NaN), bytes: r.bytes }));
}

/** The frame of BIG that holds byte `at` of its object. */
function frameAt(at: number): { sha256: string; offset: number; stored: number } {
  return BIG_FRAMES.find((f) => f.offset + f.stored > at) as (typeof BIG_FRAMES)[number];
}

test('a connection dropped in the middle of a run of chunks: asked for again from the chunk it cut, no verified chunk twice, and the release is staged', async (t) => {
  const { lab, install, proxy, home } = await behindProxy(t);
  const objectSize = fs.statSync(path.join(lab.feed, BIG_OBJECT)).size;
  const cut = Math.floor(objectSize / 2);
  proxy.once(new RegExp(`${BIG_OBJECT}$`), { kind: 'drop', afterBytes: cut });
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  await until('the staged release', () => logOf(home).includes('1.1.0 staged complete and verified'), 30_000);
  const victim = frameAt(cut);
  assert.deepEqual(bigRequests(proxy).map((r) => r.from), [0, victim.offset], 'once whole, then from the frame the drop cut');
  assert.equal(
    bigRequests(proxy).reduce((n, r) => n + r.bytes, 0),
    objectSize + (cut - victim.offset),
    'what came twice is the part of one frame before the cut',
  );
  assert.match(logOf(home), new RegExp(`the run from chunk ${victim.sha256.slice(0, 12)} failed \\(attempt 1 of 3\\), asking again`));
  assert.equal(treeOf(path.join(home, 'updates', '1.1.0'))['assets/big.bin'], BIG.toString('base64'));
  assert.equal(lab.reports().length, 0, 'a run asked for again is not a failure');
  await stop(agent);
});

test('SIGKILL in the middle of a download: the next start asks only for the chunks it had not verified', async (t) => {
  const { lab, install, proxy, home } = await behindProxy(t);
  // The run stalls half way, so the agent is caught in the middle of the download, the chunks before it verified.
  const objectSize = fs.statSync(path.join(lab.feed, BIG_OBJECT)).size;
  const hanging = frameAt(Math.floor(objectSize / 2));
  proxy.once(new RegExp(`${BIG_OBJECT}$`), { kind: 'stall', afterBytes: hanging.offset + 100 });
  const first = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => first.kill('SIGKILL'));
  const store = path.join(home, 'updates', 'chunks');
  const verified = BIG_FRAMES.filter((f) => f.offset < hanging.offset).map((f) => f.sha256);
  const rest = BIG_FRAMES.filter((f) => f.offset >= hanging.offset);
  // The other run (the small files' chunks) goes on beside the stalled one: on a busy machine it may
  // still be under way when the big object's chunks are in, so the kill waits for it too.
  const planned = Number(await until('the plan', () => /(\d+) chunks to download in/.exec(logOf(home))?.[1]));
  await until(
    'every chunk but the stalled rest verified',
    () => {
      const chunks = ChunkStore.read(store);
      return verified.every((sha) => chunks.has(sha)) && chunks.size >= planned - rest.length;
    },
    30_000,
  );
  first.kill('SIGKILL');
  await first.finish();
  const before = bigRequests(proxy).length;

  const second = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => second.kill('SIGKILL'));
  await until('the staged release', () => logOf(home).includes('1.1.0 staged complete and verified'), 30_000);
  assert.deepEqual(bigRequests(proxy).slice(before), [{ from: hanging.offset, bytes: objectSize - hanging.offset }], 'one request, from the first chunk not verified before the kill');
  assert.match(logOf(home), new RegExp(`${rest.length} chunks to download in 1 request \\(${rest.reduce((n, f) => n + f.size, 0)} of`));
  assert.equal(treeOf(path.join(home, 'updates', '1.1.0'))['assets/big.bin'], BIG.toString('base64'));
  await stop(second);
});

test('attack: a server that stalls mid-run (slow retrieval) is abandoned after the stall limit, and the run asked for again from its first unverified chunk', async (t) => {
  const { install, proxy, home } = await behindProxy(t, { stall_timeout_s: 2 });
  const stalledAt = (BIG_FRAMES[1]?.offset ?? 0) + 1024;
  proxy.once(new RegExp(`${BIG_OBJECT}$`), { kind: 'stall', afterBytes: stalledAt });
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  await until('the stalled transfer', () => bigRequests(proxy).length > 0);
  // A request to check while the update runs starts no second check (a push would queue one: see the push tests).
  const asked = await new AgentClient(createPlatform(), { ...process.env, OUTPOST_HOME: home }).send('check_for_update', 5_000);
  assert.equal(asked.status, 'ok');
  assert.equal(asked.message, 'a check is already running', 'the requester is told no second check starts');
  await until('the staged release', () => logOf(home).includes('1.1.0 staged complete and verified'), 30_000);
  const victim = BIG_FRAMES[1] as (typeof BIG_FRAMES)[number];
  assert.match(logOf(home), new RegExp(`the run from chunk ${victim.sha256.slice(0, 12)} failed \\(attempt 1 of 3\\), asking again: .*nothing received for 2000 ms`));
  assert.deepEqual(
    bigRequests(proxy).map((r) => r.from),
    [0, victim.offset],
  );
  await stop(agent);
});

test('a disk too small: refused before anything is downloaded, with a clear report', async (t) => {
  const { lab, install, proxy, home } = await behindProxy(t, { min_free_mb: 1_000_000_000 });
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  const report = await until('the report', () => lab.reports().find((r) => r.code === 'ERR_UPDATE_DISK_SPACE'));
  assert.match(report.message, /Not enough disk space for 1\.1\.0: it needs [\d.]+ MB and 1000000000\.0 MB must stay free, but [\d.]+ MB are free on .*updates\. Nothing was downloaded\./);
  assert.equal(proxy.seen.filter((r) => r.path.includes('/files/')).length, 0, 'not one chunk of the release was asked for');
  await until('IDLE again', () => /state CHECKING_UPDATE -> IDLE: update failed; will retry/.test(logOf(home)));
  await stop(agent);
});

test('the backend down: reports are buffered on disk; back up: each delivered once and the buffer emptied', async (t) => {
  const lab = new ReleaseLab(t);
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  const port = await freePort();
  const home = lab.home({ url: `http://127.0.0.1:${port}`, pollS: 1 });
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  const buffer = storagePaths(home).errorReports;
  const buffered = await until('two buffered reports', () => {
    const reports = bufferedReports(buffer);
    return reports.length >= 2 && reports;
  });
  assert.ok(buffered.every((r) => r.code === 'ERR_UPDATE_DOWNLOAD'));
  assert.match(buffered[0] ? JSON.stringify(buffered[0]) : '', /Cannot reach the release feed/);

  await lab.startServer(port);
  await until('the buffer emptied', () => fs.existsSync(buffer) && fs.readFileSync(buffer, 'utf8') === '', 20_000);
  const delivered = lab.reports();
  const ids = delivered.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length, 'each report stored once');
  for (const report of buffered) assert.ok(ids.includes(report.id), `report ${report.id} delivered`);
  await stop(agent);
});

test('key rotation: an agent that trusts the first root follows the feed through a new targets key and a new root key', async (t) => {
  const lab = new ReleaseLab(t);
  const firstRoot = path.join(lab.root, 'root-v1.json');
  fs.copyFileSync(path.join(lab.keys, 'root.json'), firstRoot);
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  assert.match(lab.release(['rotate', '--feed', lab.feed, '--key', lab.keys, '--role', 'targets']), /root is now version 2/);
  assert.match(lab.release(['rotate', '--feed', lab.feed, '--key', lab.keys, '--role', 'root']), /root is now version 3/);
  assert.equal(fs.readdirSync(lab.keys).filter((n) => n.includes('.retired-')).length, 2, 'the old keys are kept, retired');
  lab.publish(lab.app('1.1.0', V2), '1.1.0');
  await lab.startServer();
  const home = lab.home({ trustFile: firstRoot });
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
  t.after(() => agent.kill('SIGKILL'));
  await until('the staged release', () => logOf(home).includes('1.1.0 staged complete and verified'));
  const cachedRoot = JSON.parse(fs.readFileSync(path.join(home, 'updates', 'metadata', 'root.json'), 'utf8'));
  assert.equal(cachedRoot.signed.version, 3, 'the agent walked the chain of roots');
  assert.equal(lab.reports().length, 0);
  await stop(agent);
});

test('behind a proxy (HTTP_PROXY): the feed and the WebSocket both go through it', async (t) => {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const proxy = await ForwardProxy.start();
  t.after(() => void proxy.close());
  const home = lab.home();
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  const env = { OUTPOST_INSTALL_DIR: install, HTTP_PROXY: proxy.url, http_proxy: proxy.url, NO_PROXY: '', no_proxy: '' };
  const agent = await startRunningAgent(home, env);
  t.after(() => agent.kill('SIGKILL'));
  await until('the first check', () => logOf(home).includes('no update: 1.0.0 is the version'));
  await until('the push channel', () => logOf(home).includes('push channel open'));
  lab.publish(lab.app('1.1.0', V2), '1.1.0');
  await until('the staged release', () => logOf(home).includes('1.1.0 staged complete and verified'));
  // The agent's log in each message: a failure here (seen once, under load) must say what the agent did.
  const log = logOf(home);
  assert.match(log, /push: agent:update_required/, `the push came through the tunnel\n${log}`);
  assert.match(log, /push channel through the proxy http:\/\/127\.0\.0\.1:\d+\//, log);
  // Every tunnel to the server: a push channel that had to retry its handshake (a loaded machine) opens another.
  assert.ok(proxy.tunnels.length >= 1 && proxy.tunnels.every((to) => to === `127.0.0.1:${lab.port}`), `the WebSocket went through CONNECT: ${proxy.tunnels.join(', ')}\n${log}`);
  assert.ok(proxy.requests.some((r) => r.startsWith(`GET ${lab.url}/feed/metadata/`)), 'the metadata came through the proxy');
  assert.ok(proxy.requests.some((r) => r.startsWith(`GET ${lab.url}/feed/files/`)), 'the chunks came through the proxy');
  await stop(agent);
});
