import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import axios from 'axios';
import { blobTarget, ChannelPointer, channelTarget, FEED_METADATA_DIR, storedTargetPath } from '../../app/common/release.js';
import { OutpostError } from '../../app/base/errors.js';
import { downloadVerified } from '../../app/main/core/update/download.js';
import { FeedRepo } from '../../tools/release/feed-repo.js';
import { loadKeys, ONLINE_ROLES } from '../../tools/release/keys.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ReleaseLab } from '../helpers/release-lab.js';

const hex = (algorithm: string, bytes: Buffer) => createHash(algorithm).update(bytes).digest('hex');
/** A SHA-512 that is well formed but not that of the bytes. */
const WRONG_SHA512 = 'f'.repeat(128);

/** Asserts that `promise` rejects with an OutpostError of `code` whose message matches `message`. */
async function refusedWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof OutpostError, `an OutpostError, not ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, message);
    return true;
  });
}

/** A lab with 1.0.0 published on stable and its server running. */
async function publishedLab(t: { after: (fn: () => void | Promise<void>) => void }, files: Record<string, string | Buffer> = { 'main.js': 'v1' }) {
  const lab = new ReleaseLab(t);
  lab.publish(lab.app('1.0.0', files), '1.0.0');
  await lab.startServer();
  return lab;
}

function feedRepo(lab: ReleaseLab): FeedRepo {
  return FeedRepo.open({ feedDir: lab.feed, keys: loadKeys(lab.keys, ONLINE_ROLES, 'the test'), now: () => new Date() }, null);
}

async function proxied(t: { after: (fn: () => Promise<void>) => void }, lab: ReleaseLab): Promise<FaultProxy> {
  const proxy = await FaultProxy.start(lab.url);
  t.after(() => proxy.close());
  return proxy;
}

// Endless data: each answer below is the real file followed by filler for as long as the agent reads.
// `file` and `limit` are regular expressions: tuf-js's own limit for the timestamp, the signed length for the others.
for (const { name, file, limit } of [
  { name: 'timestamp metadata', file: 'timestamp\\.json', limit: '16384' },
  { name: 'snapshot metadata', file: '1\\.snapshot\\.json', limit: '\\d+' },
  { name: 'targets metadata', file: '1\\.targets\\.json', limit: '\\d+' },
]) {
  test(`endless data: ${name} longer than its limit is refused as too long (ERR_UPDATE_VERIFY naming the file and the limit), not as an unreachable feed`, async (t) => {
    const lab = await publishedLab(t);
    const proxy = await proxied(t, lab);
    proxy.once(new RegExp(`/metadata/${file}$`), { kind: 'endless' });

    const feed = lab.agentFeed({ url: proxy.url });
    await refusedWith(feed.refresh(), 'ERR_UPDATE_VERIFY', new RegExp(`the answer for \\S*/metadata/${file} was longer than the ${limit} bytes allowed for it \\(endless data\\?\\), so it was cut off there and not used`));
  });
}

test('endless data: a new root longer than its limit is refused as too long (ERR_UPDATE_VERIFY naming 2.root.json and 512000 bytes)', async (t) => {
  const lab = await publishedLab(t);
  const firstRoot = path.join(lab.root, 'first-root.json');
  fs.copyFileSync(path.join(lab.keys, 'root.json'), firstRoot);
  lab.release(['rotate', '--feed', lab.feed, '--key', lab.keys, '--role', 'timestamp']);
  const proxy = await proxied(t, lab);
  proxy.once(/\/2\.root\.json$/, { kind: 'endless' });

  const feed = lab.agentFeed({ url: proxy.url, trustedRootFile: firstRoot });
  await refusedWith(feed.refresh(), 'ERR_UPDATE_VERIFY', /the answer for \S*\/metadata\/2\.root\.json was longer than the 512000 bytes allowed for it \(endless data\?\), so it was cut off there and not used/);
});

test('endless data: a channel pointer longer than its signed length is refused as too long (ERR_UPDATE_VERIFY naming it and the length)', async (t) => {
  const lab = await publishedLab(t);
  const proxy = await proxied(t, lab);
  const feed = lab.agentFeed({ url: proxy.url });
  await feed.refresh();
  const info = await feed.target(channelTarget('stable'));
  assert.ok(info);
  proxy.once(/\/targets\/channels\/[0-9a-f]+\.stable\.json$/, { kind: 'endless' });

  await refusedWith(feed.document(info, ChannelPointer), 'ERR_UPDATE_VERIFY', new RegExp(`the answer for \\S*/channels/[0-9a-f]+\\.stable\\.json was longer than the ${info.length} bytes allowed for it \\(endless data\\?\\), so it was cut off there and not used`));
});

for (const { name, content } of [
  { name: 'not JSON', content: () => 'this is not JSON {' },
  { name: 'JSON but not metadata', content: () => '{"hello":"world"}' },
  { name: 'timestamp metadata, not root', content: (lab: ReleaseLab) => fs.readFileSync(path.join(lab.feed, FEED_METADATA_DIR, 'timestamp.json'), 'utf8') },
  {
    name: 'a root whose signature was removed',
    content: (lab: ReleaseLab) => JSON.stringify({ ...JSON.parse(fs.readFileSync(path.join(lab.keys, 'root.json'), 'utf8')), signatures: [] }),
  },
]) {
  test(`a trusted root file that is ${name} is refused as ERR_UPDATE_VERIFY naming the file`, async (t) => {
    const lab = await publishedLab(t);
    const trusted = path.join(lab.root, 'trusted-root.json');
    fs.writeFileSync(trusted, content(lab));

    await refusedWith(lab.agentFeed({ trustedRootFile: trusted }).refresh(), 'ERR_UPDATE_VERIFY', new RegExp(`the trusted root ${trusted} is not valid TUF root metadata \\(.+\\)`));
  });
}

test('a cached root that is JSON but not root metadata is replaced from the trusted root, and the feed verifies', async (t) => {
  const lab = await publishedLab(t);
  const cacheDir = path.join(lab.root, 'cache');
  fs.mkdirSync(cacheDir);
  fs.writeFileSync(path.join(cacheDir, 'root.json'), '{}');

  const feed = lab.agentFeed({ cacheDir });
  await feed.refresh();
  assert.ok(await feed.target(channelTarget('stable')));
});

// The release tool lists SHA-256 only; a TUF feed may list SHA-512 too, or instead, or other algorithms.
for (const { name, describe, expect } of [
  { name: 'SHA-512 only', describe: (b: Buffer) => ({ sha512: hex('sha512', b) }), expect: null },
  { name: 'SHA-256 and SHA-512', describe: (b: Buffer) => ({ sha256: hex('sha256', b), sha512: hex('sha512', b) }), expect: null },
  { name: 'SHA-256 and an algorithm the agent does not know', describe: (b: Buffer) => ({ sha256: hex('sha256', b), 'blake3-256': 'ab'.repeat(32) }), expect: null },
  { name: 'a right SHA-256 but a wrong SHA-512', describe: (b: Buffer) => ({ sha256: hex('sha256', b), sha512: WRONG_SHA512 }), expect: /channels\/stable\.json does not match its signed SHA-512/ },
  { name: 'only algorithms the agent does not know', describe: () => ({ 'blake3-256': 'ab'.repeat(32), md5: '00'.repeat(16) }), expect: /lists only hashes the agent cannot check \(blake3-256, md5\)/ },
]) {
  test(`a channel pointer signed with ${name} is ${expect ? 'refused (ERR_UPDATE_VERIFY)' : 'read'}`, async (t) => {
    const lab = await publishedLab(t);
    feedRepo(lab).describeTargetUnchecked(channelTarget('stable'), describe);
    const feed = lab.agentFeed();
    await feed.refresh();
    const info = await feed.target(channelTarget('stable'));
    assert.ok(info);

    if (expect) await refusedWith(feed.document(info, ChannelPointer), 'ERR_UPDATE_VERIFY', expect);
    else assert.equal((await feed.document(info, ChannelPointer)).version, '1.0.0');
  });
}

/** A lab whose 1.0.0 holds one big file; `blob` is its stored (compressed) bytes, `file` where the agent puts it. */
async function blobLab(t: { after: (fn: () => void | Promise<void>) => void }) {
  const big = randomBytes(256 * 1024);
  const lab = await publishedLab(t, { 'big.bin': big });
  const target = blobTarget(hex('sha256', big));
  const { hashes } = await signedRequest(lab, target, '');
  assert.ok(hashes.sha256);
  const blob = fs.readFileSync(path.join(lab.feed, storedTargetPath(target, hashes.sha256)));
  return { lab, target, blob, file: path.join(lab.root, 'downloaded.br') };
}

/** A blob's download request as the update service makes it from the signed description (`describe`: re-described first). */
async function signedRequest(lab: ReleaseLab, target: string, file: string, describe?: (bytes: Buffer) => Record<string, string>) {
  if (describe) feedRepo(lab).describeTargetUnchecked(target, describe);
  const feed = lab.agentFeed();
  await feed.refresh();
  const info = await feed.target(target);
  assert.ok(info);
  return { url: feed.url(info), file, length: info.length, hashes: info.hashes, stallMs: 10_000 };
}

for (const { name, describe, expect } of [
  { name: 'SHA-512 only', describe: (b: Buffer) => ({ sha512: hex('sha512', b) }), expect: null },
  { name: 'SHA-256 and SHA-512', describe: (b: Buffer) => ({ sha256: hex('sha256', b), sha512: hex('sha512', b) }), expect: null },
  { name: 'a right SHA-256 but a wrong SHA-512', describe: (b: Buffer) => ({ sha256: hex('sha256', b), sha512: WRONG_SHA512 }), expect: /does not match its signed SHA-512/ },
  { name: 'only algorithms the agent does not know', describe: () => ({ 'blake3-256': 'ab'.repeat(32) }), expect: /lists only hashes the agent cannot check \(blake3-256\)/ },
]) {
  test(`a blob signed with ${name} is ${expect ? 'refused (ERR_UPDATE_VERIFY), nothing kept' : 'downloaded and verified'}`, async (t) => {
    const { lab, target, blob, file } = await blobLab(t);
    const download = signedRequest(lab, target, file, describe).then((request) => downloadVerified(axios.create(), request));

    if (expect) {
      await refusedWith(download, 'ERR_UPDATE_VERIFY', expect);
      assert.deepEqual([fs.existsSync(file), fs.existsSync(`${file}.part`)], [false, false]);
    } else {
      assert.deepEqual(await download, { transferred: blob.length, resumedFrom: 0 });
      assert.ok(fs.readFileSync(file).equals(blob));
    }
  });
}

test('a resumed download hashes the bytes it already had with every listed algorithm: right SHA-256 and SHA-512 pass, a wrong SHA-512 is refused', async (t) => {
  const { lab, target, blob, file } = await blobLab(t);
  const signed = await signedRequest(lab, target, file, (b) => ({ sha256: hex('sha256', b), sha512: hex('sha512', b) }));
  const half = Math.floor(blob.length / 2);

  fs.writeFileSync(`${file}.part`, blob.subarray(0, half));
  assert.deepEqual(await downloadVerified(axios.create(), signed), { transferred: blob.length - half, resumedFrom: half });
  assert.ok(fs.readFileSync(file).equals(blob));

  fs.rmSync(file);
  fs.writeFileSync(`${file}.part`, blob.subarray(0, half));
  await refusedWith(
    downloadVerified(axios.create(), { ...signed, hashes: { ...signed.hashes, sha512: WRONG_SHA512 } }),
    'ERR_UPDATE_VERIFY',
    /does not match its signed SHA-512/,
  );
  assert.equal(fs.existsSync(`${file}.part`), false, 'the part that cannot be right is deleted');
});

test('downloadVerified itself refuses hashes of only unknown algorithms, before any byte is fetched or the part touched', async (t) => {
  const { lab, target, blob, file } = await blobLab(t);
  const proxy = await proxied(t, lab);
  const signed = await signedRequest(lab, target, file);
  fs.writeFileSync(`${file}.part`, blob.subarray(0, 10));

  await refusedWith(
    downloadVerified(axios.create(), { ...signed, url: signed.url.replace(lab.url, proxy.url), hashes: { md5: hex('md5', blob) } }),
    'ERR_UPDATE_VERIFY',
    /lists only hashes the agent cannot check \(md5\)/,
  );
  assert.deepEqual(proxy.seen, []);
  assert.equal(fs.statSync(`${file}.part`).size, 10);
});
