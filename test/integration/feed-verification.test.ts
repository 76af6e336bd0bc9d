import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ChannelPointer, channelTarget, FEED_METADATA_DIR } from '../../app/common/release.js';
import { OutpostError } from '../../app/base/errors.js';
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
