import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import axios from 'axios';
import { ChannelPointer, channelTarget, ReleaseManifest } from '../../app/common/release.js';
import { FeedObjects } from '../../app/main/core/update/feed-objects.js';
import { ReleaseLab, runReleaseTool } from '../helpers/release-lab.js';

/** root.key moved out of the keys folder, as the help says to keep it (offline); returns where it went. */
function takeRootKeyOffline(lab: ReleaseLab): string {
  const offline = path.join(lab.root, 'offline-root.key');
  fs.renameSync(path.join(lab.keys, 'root.key'), offline);
  return offline;
}

/** What the agent's TUF client, trusting `trustedRootFile`, reads a channel to offer (and the manifest it names). */
async function offered(lab: ReleaseLab, channel: string, trustedRootFile?: string) {
  const feed = lab.agentFeed(trustedRootFile ? { trustedRootFile } : {});
  await feed.refresh();
  const info = await feed.target(channelTarget(channel));
  assert.ok(info, `the feed describes ${channel}`);
  const pointer = await feed.document(info, ChannelPointer);
  const objects = new FeedObjects(axios.create(), feed.baseUrl, 10_000);
  const raw = await objects.fetch('manifests', { sha256: pointer.manifest.sha256, storedLength: pointer.manifest.length, maxRaw: 1 << 20 });
  const manifest = ReleaseManifest.parse(JSON.parse(raw.toString('utf8')));
  const { manifest: named, ...setting } = pointer;
  assert.equal(named.sha256, createHash('sha256').update(raw).digest('hex'), 'the pointer names the manifest by its hash');
  return { pointer: setting, manifestVersion: manifest.version };
}

function lines(text: string): string[] {
  return text.split('\n').filter(Boolean);
}

test('without root.key in the keys folder, publish (twice), channel and refresh succeed, and the agent verifies the feed they signed', async (t) => {
  const lab = new ReleaseLab(t);
  takeRootKeyOffline(lab);
  lab.publish(lab.app('1.0.0', { 'main.js': 'v1' }), '1.0.0');
  lab.publish(lab.app('1.1.0', { 'main.js': 'v1.1' }), '1.1.0');
  lab.release(['channel', '--feed', lab.feed, '--key', lab.keys, '--channel', 'beta', '--version', '1.0.0', '--rollout', '40']);
  lab.release(['refresh', '--feed', lab.feed, '--key', lab.keys]);
  assert.equal(fs.existsSync(path.join(lab.keys, 'root.key')), false, 'root.key stayed offline');
  await lab.startServer();

  assert.deepEqual(await offered(lab, 'stable'), { pointer: { channel: 'stable', version: '1.1.0', rollout_percent: 100, min_version: null }, manifestVersion: '1.1.0' });
  assert.deepEqual(await offered(lab, 'beta'), { pointer: { channel: 'beta', version: '1.0.0', rollout_percent: 40, min_version: null }, manifestVersion: '1.0.0' });
});

for (const role of ['root', 'targets'] as const) {
  test(`rotate --role ${role} without root.key fails with one line naming root.key and why rotate needs it, and changes nothing`, (t) => {
    const lab = new ReleaseLab(t);
    lab.publish(lab.app('1.0.0', { 'main.js': 'v1' }), '1.0.0');
    takeRootKeyOffline(lab);
    const before = { keys: fs.readdirSync(lab.keys).sort(), metadata: fs.readdirSync(path.join(lab.feed, 'metadata')).sort() };

    const result = runReleaseTool(['rotate', '--feed', lab.feed, '--key', lab.keys, '--role', role]);

    assert.equal(result.status, 66, 'NO_INPUT: a key is missing');
    assert.equal(lines(result.stderr).length, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`^outpost-release: rotate needs the root key ${path.join(lab.keys, 'root.key')}, which cannot be read \\(ENOENT\\): .*only the root key signs`));
    assert.deepEqual({ keys: fs.readdirSync(lab.keys).sort(), metadata: fs.readdirSync(path.join(lab.feed, 'metadata')).sort() }, before);
  });
}

test('with root.key brought back for it, rotate --role targets works; with it offline again, the next publish verifies for an agent that trusts the first root', async (t) => {
  const lab = new ReleaseLab(t);
  const firstRoot = path.join(lab.root, 'first-root.json');
  fs.copyFileSync(path.join(lab.keys, 'root.json'), firstRoot);
  lab.publish(lab.app('1.0.0', { 'main.js': 'v1' }), '1.0.0');
  const offline = takeRootKeyOffline(lab);

  fs.renameSync(offline, path.join(lab.keys, 'root.key'));
  lab.release(['rotate', '--feed', lab.feed, '--key', lab.keys, '--role', 'targets']);
  takeRootKeyOffline(lab);
  lab.publish(lab.app('1.1.0', { 'main.js': 'v1.1' }), '1.1.0');
  await lab.startServer();

  assert.equal((await offered(lab, 'stable', firstRoot)).manifestVersion, '1.1.0');
});

test('publish without targets.key fails with one line naming that file and the command', (t) => {
  const lab = new ReleaseLab(t);
  fs.rmSync(path.join(lab.keys, 'targets.key'));

  const result = runReleaseTool(['publish', '--app', lab.app('1.0.0', {}), '--version', '1.0.0', '--key', lab.keys, '--feed', lab.feed]);

  assert.equal(result.status, 66, 'NO_INPUT: a key is missing');
  assert.deepEqual(lines(result.stderr), [`outpost-release: publish needs the targets key ${path.join(lab.keys, 'targets.key')}, which cannot be read (ENOENT)`]);
  assert.equal(fs.existsSync(lab.feed), false, 'nothing was written');
});

test('--key given a key file instead of the keys folder: one line saying a folder is expected and the files it must hold, exit 64', (t) => {
  const lab = new ReleaseLab(t);
  lab.publish(lab.app('1.0.0', { 'main.js': 'v1' }), '1.0.0');
  const keyFile = path.join(lab.keys, 'targets.key');
  const online = 'targets.key, snapshot.key, timestamp.key';
  const cases = [
    { args: ['publish', '--app', lab.app('1.1.0', {}), '--version', '1.1.0', '--key', keyFile, '--feed', lab.feed], files: online },
    { args: ['channel', '--feed', lab.feed, '--key', keyFile, '--channel', 'stable', '--version', '1.0.0'], files: online },
    { args: ['refresh', '--feed', lab.feed, '--key', keyFile], files: online },
    { args: ['rotate', '--feed', lab.feed, '--key', keyFile, '--role', 'timestamp'], files: `root.key, ${online}` },
  ];
  for (const { args, files } of cases) {
    const result = runReleaseTool(args);
    assert.equal(result.status, 64, args[0]);
    assert.deepEqual(lines(result.stderr), [`outpost-release: --key ${keyFile} is a file; --key takes the keys folder (made by keygen), which must hold ${files}`], args[0]);
  }
});

test('rotate --role timestamp replaces a lost timestamp key, and the agent that trusts the first root verifies the re-signed feed', async (t) => {
  const lab = new ReleaseLab(t);
  const firstRoot = path.join(lab.root, 'first-root.json');
  fs.copyFileSync(path.join(lab.keys, 'root.json'), firstRoot);
  lab.publish(lab.app('1.0.0', { 'main.js': 'v1' }), '1.0.0');
  fs.rmSync(path.join(lab.keys, 'timestamp.key'));

  const out = lab.release(['rotate', '--feed', lab.feed, '--key', lab.keys, '--role', 'timestamp']);
  assert.equal(out, "the timestamp key was replaced; the feed's root is now version 2\n");
  await lab.startServer();

  assert.equal((await offered(lab, 'stable', firstRoot)).manifestVersion, '1.0.0');
});
