/**
 * Chunked updates against the real release tool and server: an agent at any older version downloads
 * only the frames of the chunks it holds nowhere (bytes counted at a proxy), the metadata an agent reads per check does
 * not grow with the feed's history, and `prune` never removes what a kept release needs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { zstdCompressSync } from 'node:zlib';
import { test } from 'node:test';
import { chunkBuffer, sha256Hex } from '../../app/base/chunking.js';
import { storagePaths, type UpdatePaths } from '../../app/base/storage-layout.js';
import { OutpostError } from '../../app/base/errors.js';
import { ChannelPointer, channelTarget, objectPath } from '../../app/common/release.js';
import { ChunkStore } from '../../app/main/core/update/chunk-store.js';
import { DEFAULT_CHUNKING } from '../../tools/release/release-writer.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { tempDir } from '../helpers/paths.js';
import { seededBytes } from '../helpers/seeded-bytes.js';
import { type AppFiles, framesOf, ReleaseLab, treeOf } from '../helpers/release-lab.js';

type T = { after: (fn: () => void | Promise<void>) => void };

/** `base` with `text` written at `offset` (same length). */
function edited(base: Buffer, offset: number, text: string): Buffer {
  const copy = Buffer.from(base);
  copy.write(text, offset);
  return copy;
}

/**
 * Four releases of an app with a 2 MiB file that changes in a different place each time (an
 * overwrite, an insertion of 100 KB, another overwrite) and a file that moves to another path in the last.
 */
function releases(): Array<{ version: string; files: AppFiles }> {
  const big0 = seededBytes('big', 2 * 1024 * 1024);
  const big1 = edited(big0, 300_000, 'changed in 1.1.0');
  const big2 = Buffer.concat([big1.subarray(0, 800_000), seededBytes('inserted in 1.2.0', 100_000), big1.subarray(800_000)]);
  const big3 = edited(big2, 1_800_000, 'changed in 1.3.0');
  const lib = seededBytes('lib', 100_000);
  return [
    { version: '1.0.0', files: { 'big.bin': big0, 'lib/a.bin': lib, 'main.js': 'v1' } },
    { version: '1.1.0', files: { 'big.bin': big1, 'lib/a.bin': lib, 'main.js': 'v2' } },
    { version: '1.2.0', files: { 'big.bin': big2, 'lib/a.bin': lib, 'main.js': 'v3', 'empty.txt': '' } },
    { version: '1.3.0', files: { 'big.bin': big3, 'lib/b.bin': lib, 'main.js': 'v4', 'empty.txt': '' } },
  ];
}

/** The chunks of every file of an app folder. */
function chunksOf(dir: string): Set<string> {
  return new Set(Object.values(treeOf(dir)).flatMap((b64) => chunkBuffer(Buffer.from(b64, 'base64'), DEFAULT_CHUNKING).map((c) => c.sha256)));
}

/** One update check by the agent's pipeline, installed as `running` in `installDir`, through `feedUrl`: stages what the feed offers. */
async function stage(t: T, lab: ReleaseLab, feedUrl: string, installDir: string, running: string) {
  const updates = storagePaths(tempDir(t)).updates;
  return { updates, ...(await stageInto(lab, feedUrl, installDir, running, updates)) };
}

async function stageInto(lab: ReleaseLab, url: string, installDir: string, running: string, updates: UpdatePaths) {
  const { pipeline, log } = lab.pipeline({ updates, installDir, running, url });
  await pipeline.check();
  return { log, status: pipeline.status };
}

async function proxied(t: T, lab: ReleaseLab): Promise<FaultProxy> {
  const proxy = await FaultProxy.start(lab.url);
  t.after(() => proxy.close());
  return proxy;
}

/** The requests for files' objects (runs of frames) a proxy saw, and the bytes it passed for them. */
function runsSeen(proxy: FaultProxy): { requests: number; bytes: number } {
  const runs = proxy.seen.filter((r) => r.path.includes('/feed/files/'));
  return { requests: runs.length, bytes: runs.reduce((n, r) => n + r.bytes, 0) };
}

/** The chunks of the app in `dir` that `held` lacks, each once, and the bytes of their frames in the feed. */
function lackingFrames(dir: string, held: Set<string>): { chunks: number; bytes: number } {
  const lacking = new Map<string, number>();
  for (const b64 of Object.values(treeOf(dir))) {
    for (const frame of framesOf(Buffer.from(b64, 'base64'))) if (!held.has(frame.sha256)) lacking.set(frame.sha256, frame.stored);
  }
  return { chunks: lacking.size, bytes: [...lacking.values()].reduce((n, b) => n + b, 0) };
}

test('updates from each of three older versions to the newest download exactly the frames of the chunks each lacks (bytes counted at a proxy), a run of them per request, over at most 8 kept-alive connections, and build the newest byte for byte', async (t) => {
  const lab = new ReleaseLab(t);
  const apps = releases().map(({ version, files }) => {
    const dir = lab.app(version, files);
    lab.publish(dir, version);
    return { version, dir };
  });
  await lab.startServer();
  const newest = apps.at(-1) as { version: string; dir: string };
  const newestChunks = chunksOf(newest.dir);
  for (const installed of apps.slice(0, -1)) {
    const proxy = await proxied(t, lab);
    const { updates, log, status } = await stage(t, lab, proxy.url, installed.dir, installed.version);
    const lacking = lackingFrames(newest.dir, chunksOf(installed.dir));
    const runs = runsSeen(proxy);
    assert.equal(runs.bytes, lacking.bytes, `from ${installed.version}: the frames of the ${lacking.chunks} chunks it lacks, not a byte more`);
    assert.ok(runs.requests >= 1 && runs.requests <= lacking.chunks, `from ${installed.version}: ${runs.requests} requests for ${lacking.chunks} chunks`);
    if (installed.version !== '1.2.0') assert.ok(runs.requests < lacking.chunks - 4, `from ${installed.version}: the chunks of the 100 KB inserted in 1.2.0 come in one request (${runs.requests} for ${lacking.chunks} chunks)`);
    assert.ok(proxy.connections <= 8, `${proxy.seen.length} requests over ${proxy.connections} kept-alive connections (8 in flight at most)`);
    assert.ok(lacking.chunks < newestChunks.size / 4, `from ${installed.version}: ${lacking.chunks} of ${newestChunks.size} chunks`);
    assert.deepEqual(treeOf(updates.stagedTree(newest.version)), treeOf(newest.dir));
    assert.ok(log.lines.some((l) => l.includes(`${lacking.chunks} chunks to download in ${runs.requests} ${runs.requests === 1 ? 'request' : 'requests'}`)));
    assert.ok(status.lastDownload && status.lastDownload.downloaded_bytes < status.lastDownload.release_bytes / 4, `from ${installed.version}: ${status.lastDownload?.downloaded_bytes} bytes`);
    await proxy.close();
  }
});

test('a version staged earlier is a source too: with 1.2.0 staged and waiting, 1.3.0 downloads only what neither 1.0.0 nor 1.2.0 holds', async (t) => {
  const lab = new ReleaseLab(t);
  const [v0, , v2, v3] = releases();
  const dirs = [v0, v2, v3].map((r) => {
    const release = r as { version: string; files: AppFiles };
    const dir = lab.app(release.version, release.files);
    lab.publish(dir, release.version);
    return dir;
  });
  const [installed, staged, newest] = dirs as [string, string, string];
  await lab.startServer();
  const updates = storagePaths(tempDir(t)).updates;
  fs.cpSync(staged, updates.stagedTree('1.2.0'), { recursive: true });
  fs.writeFileSync(updates.staged, JSON.stringify({ version: '1.2.0', staged_at: new Date().toISOString() }));
  const proxy = await proxied(t, lab);
  await stageInto(lab, proxy.url, installed, '1.0.0', updates);
  const lacking = lackingFrames(newest, new Set([...chunksOf(installed), ...chunksOf(staged)]));
  assert.ok(lacking.chunks > 0);
  assert.equal(runsSeen(proxy).bytes, lacking.bytes);
  assert.deepEqual(treeOf(updates.stagedTree('1.3.0')), treeOf(newest));
});

test("per-check metadata does not grow with the feed's history: after 25 releases an agent reads at most 1.2x what it read after one", async (t) => {
  const lab = new ReleaseLab(t);
  const big = seededBytes('history', 300_000);
  lab.publish(lab.app('1.0.0', { 'big.bin': big }), '1.0.0');
  await lab.startServer();
  const perCheck = async () => {
    const proxy = await proxied(t, lab);
    const feed = lab.agentFeed({ url: proxy.url });
    await feed.refresh();
    const info = await feed.target(channelTarget('stable'));
    assert.ok(info);
    await feed.document(info, ChannelPointer);
    await proxy.close();
    return proxy.bytesServed;
  };
  const afterOne = await perCheck();
  for (let i = 1; i <= 24; i++) lab.publish(lab.app(`1.0.${i}`, { 'big.bin': edited(big, i * 10_000, `release ${i}`) }), `1.0.${i}`);
  const afterMany = await perCheck();
  t.diagnostic(`per-check metadata: ${afterOne} bytes after 1 release, ${afterMany} after 25`);
  assert.ok(afterMany <= 1.2 * afterOne, `${afterMany} bytes after 25 releases, ${afterOne} after one`);
});

test('prune --keep 2 removes what only retired releases need and keeps every object a kept release needs: a fresh agent stages each kept release in full from the pruned feed', async (t) => {
  const lab = new ReleaseLab(t);
  const apps = releases().map(({ version, files }) => {
    const dir = lab.app(version, files);
    lab.publish(dir, version);
    return { version, dir };
  });
  const objects = () => fs.readdirSync(path.join(lab.feed, 'files'), { recursive: true }).filter((n) => String(n).endsWith('.zst')).length;
  const before = objects();

  const graced = lab.release(['prune', '--feed', lab.feed, '--key', lab.keys, '--keep', '2']);
  assert.match(graced, /kept 1\.2\.0, 1\.3\.0; retired 1\.0\.0, 1\.1\.0; removed 0 objects/, 'within the grace period nothing is removed');
  assert.equal(objects(), before);
  assert.match(lab.release(['list', '--feed', lab.feed]), /1\.0\.0 {2}retired /);

  const pruned = lab.release(['prune', '--feed', lab.feed, '--key', lab.keys, '--keep', '2', '--grace-days', '0']);
  assert.match(pruned, /kept 1\.2\.0, 1\.3\.0; retired nothing; removed (\d+) objects \(\d+ bytes\) of 1\.0\.0, 1\.1\.0/);
  const filesOf = (dir: string) => new Set(Object.values(treeOf(dir)).map((b64) => sha256Hex(Buffer.from(b64, 'base64'))));
  const keptFiles = new Set([...filesOf(apps[2]?.dir as string), ...filesOf(apps[3]?.dir as string)]);
  const onlyRetired = new Set([...filesOf(apps[0]?.dir as string), ...filesOf(apps[1]?.dir as string)].filter((sha) => !keptFiles.has(sha)));
  assert.ok(onlyRetired.size > 0);
  assert.equal(objects(), before - onlyRetired.size, 'exactly the files only the retired releases had are gone');

  // Every chunk, page and index of both kept releases is still there: a fresh agent (nothing installed) stages each in full.
  await lab.startServer();
  const empty = tempDir(t);
  for (const kept of apps.slice(2)) {
    lab.release(['channel', '--feed', lab.feed, '--key', lab.keys, '--channel', 'stable', '--version', kept.version, '--allow-older']);
    const { updates } = await stage(t, lab, lab.url, empty, '0.0.1');
    assert.deepEqual(treeOf(updates.stagedTree(kept.version)), treeOf(kept.dir));
  }
  assert.throws(() => lab.release(['channel', '--feed', lab.feed, '--key', lab.keys, '--channel', 'stable', '--version', '1.0.0', '--allow-older']), /version 1\.0\.0 is not published/);
});

for (const { name, spoil, code, message } of [
  {
    name: 'cut short on the server',
    spoil: (file: string, frame: { offset: number; stored: number }) => fs.truncateSync(file, frame.offset + Math.floor(frame.stored / 2)),
    code: 'ERR_UPDATE_DOWNLOAD',
    message: /was cut off after \d+ of \d+ bytes/,
  },
  {
    name: 'replaced by a frame that decompresses to more than its size',
    spoil: (file: string, frame: { offset: number; stored: number }) => {
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, zstdCompressSync(Buffer.alloc(DEFAULT_CHUNKING.max + 1)), 0, undefined, frame.offset);
      fs.closeSync(fd);
    },
    code: 'ERR_UPDATE_VERIFY',
    message: /the chunk [0-9a-f]{12} does not decompress to at most \d+ bytes/,
  },
]) {
  test(`a chunk ${name} is asked for three times, refused (${code}), and nothing is staged`, async (t) => {
    const lab = new ReleaseLab(t);
    const [v0, v1] = releases() as [{ version: string; files: AppFiles }, { version: string; files: AppFiles }];
    const installed = lab.app(v0.version, v0.files);
    lab.publish(installed, v0.version);
    const newest = lab.app(v1.version, v1.files);
    lab.publish(newest, v1.version);
    const held = chunksOf(installed);
    const big = v1.files['big.bin'] as Buffer;
    const victim = framesOf(big).find((frame) => !held.has(frame.sha256));
    assert.ok(victim);
    const object = objectPath('files', sha256Hex(big));
    spoil(path.join(lab.feed, object), victim);
    await lab.startServer();
    const proxy = await proxied(t, lab);
    const updates = storagePaths(tempDir(t)).updates;
    await assert.rejects(stageInto(lab, proxy.url, installed, v0.version, updates), (error: unknown) => {
      assert.ok(error instanceof OutpostError);
      assert.equal(error.code, code);
      assert.match(error.message, message);
      return true;
    });
    assert.deepEqual(
      proxy.seen.filter((r) => r.path.endsWith(object)).map((r) => r.range?.startsWith('bytes=') && Number(r.range.slice(6).split('-')[0]) <= victim.offset),
      [true, true, true],
      'three ranged requests, each from the victim or before it',
    );
    assert.equal(fs.existsSync(updates.stagedTree(v1.version)), false, 'nothing staged');
    assert.equal(fs.existsSync(`${updates.stagedTree(v1.version)}.partial`), false);
    assert.equal(ChunkStore.read(updates.chunks).has(victim.sha256), false, 'the refused chunk is not kept');
  });
}
