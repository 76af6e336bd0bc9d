/**
 * `outpost-release ... --s3`: the feed copied to an S3-compatible bucket, against a stand-in server
 * (test/helpers/s3-stand-in.ts: nothing S3-like is packaged for Debian 12), which records the order of
 * every write and can refuse or hold one. The release tool runs as a real process, with the AWS SDK.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ChannelPointer } from '../../app/common/release.js';
import { logOf } from '../helpers/agent.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { Child, startRunningAgent } from '../helpers/processes.js';
import { ReleaseLab, treeOf } from '../helpers/release-lab.js';
import { S3StandIn, type Write } from '../helpers/s3-stand-in.js';
import { seededBytes } from '../helpers/seeded-bytes.js';
import { until } from '../helpers/wait.js';

const RELEASE_BIN = path.join(REPO_ROOT, 'bin', 'outpost-release.js');
const BUCKET = 'outpost-feed';
const PREFIX = 'feed';
const TIMESTAMP = `${PREFIX}/metadata/timestamp.json`;
const SECRET = 'stand-in-secret-never-printed';
const IMMUTABLE = 'public, max-age=31536000, immutable';

const V1 = { 'main.js': 'console.log("v1")\n', 'assets/big.bin': seededBytes('s3 feed', 200 * 1024) };
const V2 = { ...V1, 'main.js': 'console.log("v2")\n' };
const V3 = { ...V2, 'assets/new.bin': seededBytes('s3 feed v3', 120 * 1024) };

/**
 * The tool's environment: the stand-in's credentials and nothing of this machine's AWS setup (no
 * profile files, and no instance-metadata lookup, which would leave the machine).
 */
function awsEnv(lab: ReleaseLab, accessKeyId = 'OUTPOSTSTANDIN'): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
  return {
    ...env,
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: SECRET,
    AWS_CONFIG_FILE: path.join(lab.root, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(lab.root, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/** `outpost-release` as a child process (the stand-in answers from this process: a synchronous spawn would starve it). */
function releaseTool(lab: ReleaseLab, args: readonly string[], env = awsEnv(lab)): Child {
  return new Child(process.execPath, [RELEASE_BIN, ...args], env);
}

async function run(lab: ReleaseLab, args: readonly string[], env = awsEnv(lab)) {
  return releaseTool(lab, args, env).finish(60_000);
}

async function runOk(lab: ReleaseLab, args: readonly string[]): Promise<string> {
  const done = await run(lab, args);
  assert.equal(done.code, 0, `outpost-release ${args[0]}: ${done.stderr}`);
  return done.stdout;
}

function bucketArgs(s3: S3StandIn, bucket = BUCKET): string[] {
  return ['--s3', `s3://${bucket}/${PREFIX}`, '--s3-endpoint', s3.url];
}

function publishArgs(lab: ReleaseLab, s3: S3StandIn, appDir: string, version: string): string[] {
  return ['publish', '--app', appDir, '--version', version, '--key', lab.keys, '--feed', lab.feed, ...bucketArgs(s3)];
}

/** The phase of a key, by the feed's layout as docs/updates.md gives it (this test's own reading, not the tool's). */
function phaseOf(key: string): number {
  const relative = key.slice(PREFIX.length + 1);
  if (/^(manifests|indexes|pages|files)\/[0-9a-f]{2}\/[0-9a-f]{64}\.zst$/.test(relative) || /^targets\/.+\.json$/.test(relative)) return 0;
  if (/^metadata\/\d+\.(targets|snapshot)\.json$/.test(relative)) return 1;
  if (/^metadata\/\d+\.root\.json$/.test(relative)) return 2;
  if (relative === 'metadata/timestamp.json') return 3;
  assert.fail(`${key} is not a file of the feed`);
}

/** Uploads in the safe order: every blob before any versioned metadata, roots after them, timestamp.json once and last. */
function assertSafeOrder(writes: readonly Write[]): void {
  assert.ok(writes.length > 0, 'something was written');
  assert.ok(
    writes.every((w) => w.method === 'PUT'),
    'only uploads',
  );
  const phases = writes.map((w) => phaseOf(w.key));
  assert.deepEqual(phases, [...phases].sort(), `blobs, then versioned metadata, then roots, then the timestamp: ${writes.map((w) => w.key).join(', ')}`);
  assert.equal(writes.at(-1)?.key, TIMESTAMP, 'timestamp.json last');
  assert.equal(writes.filter((w) => w.key === TIMESTAMP).length, 1, 'timestamp.json once');
}

/** The feed folder's published files (not its lock or temp files): relative path -> bytes. */
function feedTree(feed: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const relative of fs.readdirSync(feed, { recursive: true, encoding: 'utf8' })) {
    const file = path.join(feed, relative);
    if (fs.statSync(file).isFile() && !path.basename(relative).startsWith('.')) files.set(relative.split(path.sep).join('/'), fs.readFileSync(file));
  }
  return files;
}

/** An upload onto a bucket that held `had`: in the safe order, and of what it had, only the timestamp again. */
function assertCompletingUpload(writes: readonly Write[], had: ReadonlySet<string>, message: string): void {
  assertSafeOrder(writes);
  assert.deepEqual(
    writes.filter((w) => had.has(w.key)).map((w) => w.key),
    [TIMESTAMP],
    message,
  );
}

/** The bucket holds exactly the feed folder's files, byte for byte. */
function assertMirror(lab: ReleaseLab, s3: S3StandIn): void {
  const local = feedTree(lab.feed);
  assert.deepEqual([...s3.objects.keys()].sort(), [...local.keys()].map((k) => `${PREFIX}/${k}`).sort());
  for (const [relative, bytes] of local) assert.ok(s3.objects.get(`${PREFIX}/${relative}`)?.bytes.equals(bytes), relative);
}

/** What a TUF client reading the bucket over HTTP finds on the stable channel (its metadata cached in `cacheDir`). */
async function offered(lab: ReleaseLab, s3: S3StandIn, cacheDir: string): Promise<string> {
  const feed = lab.agentFeed({ url: `${s3.url}/${BUCKET}`, cacheDir });
  await feed.refresh();
  const info = await feed.target('channels/stable.json');
  assert.ok(info, 'the stable channel');
  return (await feed.document(info, ChannelPointer)).version;
}

test('publish --s3 to an S3-compatible bucket (a stand-in): blobs, then versioned metadata, then timestamp.json last, with the static host cache headers; the next release uploads only what is new, and an agent following the bucket stages it; prune removes from the bucket after the new timestamp; the root of a rotated key goes up just before the timestamp', async (t) => {
  const lab = new ReleaseLab(t);
  const s3 = await S3StandIn.start(t, { bucket: BUCKET, accessKeyId: 'OUTPOSTSTANDIN' });
  const v1 = lab.app('1.0.0', V1);
  const first = await runOk(lab, publishArgs(lab, s3, v1, '1.0.0'));
  assert.match(first, /s3:\/\/outpost-feed\/feed: serves feed version 1; \d+ files uploaded .*, 0 there already/);
  assertSafeOrder(s3.writes);
  assertMirror(lab, s3);

  const headers = (key: string) => {
    const object = s3.objects.get(`${PREFIX}/${key}`);
    assert.ok(object, key);
    return { cacheControl: object.cacheControl, contentType: object.contentType };
  };
  const objectKey = (dir: string) => [...s3.objects.keys()].find((k) => k.startsWith(`${PREFIX}/${dir}/`))?.slice(PREFIX.length + 1) ?? assert.fail(dir);
  assert.deepEqual(headers('metadata/timestamp.json'), { cacheControl: 'no-cache', contentType: 'application/json' });
  for (const key of ['metadata/1.root.json', 'metadata/1.targets.json', 'metadata/1.snapshot.json', objectKey('targets')]) {
    assert.deepEqual(headers(key), { cacheControl: IMMUTABLE, contentType: 'application/json' }, key);
  }
  for (const kind of ['manifests', 'files']) assert.deepEqual(headers(objectKey(kind)), { cacheControl: IMMUTABLE, contentType: 'application/zstd' }, kind);

  const before = new Set(s3.objects.keys());
  const writesBefore = s3.writes.length;
  const v2 = lab.app('1.1.0', V2);
  // A transient failure, each write refused once, is retried: the publish goes through all the same.
  const refusedOnce = new Set<string>();
  s3.refuse((key) => {
    if (refusedOnce.has(key)) return false;
    refusedOnce.add(key);
    return true;
  });
  await runOk(lab, publishArgs(lab, s3, v2, '1.1.0'));
  s3.refuse(undefined);
  const second = s3.writes.slice(writesBefore);
  assert.deepEqual([...refusedOnce].sort(), second.map((w) => w.key).sort(), 'every write was refused once, then retried');
  assertCompletingUpload(second, before, 'nothing the bucket had is uploaded again, but the timestamp');
  assertMirror(lab, s3);

  // An agent on 1.0.0 whose backend is the bucket (public read): its feed is <url>/feed/.
  const home = lab.home({ url: `${s3.url}/${BUCKET}` });
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: v1 });
  t.after(() => agent.kill('SIGKILL'));
  await until('the release staged from the bucket', () => logOf(home).includes('1.1.0 staged complete and verified'), 30_000);
  assert.deepEqual(treeOf(path.join(home, 'updates', '1.1.0')), treeOf(v2));
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);

  // Twice with no grace: the first retires 1.0.0 (its objects within the grace of its retirement), the second removes them.
  for (let i = 0; i < 2; i++) {
    const writesBeforePrune = s3.writes.length;
    const pruned = await runOk(lab, ['prune', '--feed', lab.feed, '--key', lab.keys, '--keep', '1', '--grace-days', '0', ...bucketArgs(s3)]);
    const writes = s3.writes.slice(writesBeforePrune);
    const stamp = writes.findIndex((w) => w.key === TIMESTAMP);
    assertSafeOrder(writes.slice(0, stamp + 1));
    const deletes = writes.slice(stamp + 1);
    assert.ok(deletes.length > 0, `prune ${i + 1} removed something from the bucket: ${pruned}`);
    assert.ok(
      deletes.every((w) => w.method === 'DELETE'),
      'removals only after the new timestamp',
    );
    assert.match(pruned, new RegExp(`${deletes.length} removed`));
    assertMirror(lab, s3);
  }
  assert.ok(!feedTree(lab.feed).has('metadata/1.targets.json'), 'old metadata went');
  assert.ok(
    [...s3.objects.keys()].some((k) => k.endsWith('/1.root.json')),
    'roots stay',
  );

  // A key rotation: the new root goes up after the metadata, just before the timestamp signed under it.
  const writesBeforeRotate = s3.writes.length;
  await runOk(lab, ['rotate', '--feed', lab.feed, '--key', lab.keys, '--role', 'timestamp', ...bucketArgs(s3)]);
  const rotation = s3.writes.slice(writesBeforeRotate);
  assertSafeOrder(rotation);
  assert.deepEqual(
    rotation.filter((w) => w.key.endsWith('.root.json')).map((w) => w.key),
    [`${PREFIX}/metadata/2.root.json`],
  );
  assertMirror(lab, s3);
  assert.equal(await offered(lab, s3, fs.mkdtempSync(path.join(lab.root, 'tuf-'))), '1.1.0');
});

test('a copy cut midway (a write the bucket refuses, then the tool SIGKILLed) leaves the bucket serving its previous release, complete; sync finishes the job, uploading only what is missing, timestamp.json last', async (t) => {
  const lab = new ReleaseLab(t);
  const s3 = await S3StandIn.start(t, { bucket: BUCKET, accessKeyId: 'OUTPOSTSTANDIN' });
  await runOk(lab, publishArgs(lab, s3, lab.app('1.0.0', V1), '1.0.0'));
  const reader = fs.mkdtempSync(path.join(lab.root, 'tuf-'));
  assert.equal(await offered(lab, s3, reader), '1.0.0');
  const sync = ['sync', '--feed', lab.feed, ...bucketArgs(s3)];

  // Refused: the new snapshot, after every blob and (maybe) the new targets.
  let served = s3.text(TIMESTAMP);
  let writesBefore = s3.writes.length;
  s3.refuse((key) => /\/\d+\.snapshot\.json$/.test(key));
  const refused = await run(lab, publishArgs(lab, s3, lab.app('1.1.0', V2), '1.1.0'));
  assert.equal(refused.code, 69, refused.stderr);
  assert.match(refused.stdout, /published 1\.1\.0/, 'the folder holds the release');
  assert.match(refused.stderr, /InternalError.*Its timestamp\.json was not replaced: it still serves its previous feed, complete\. Run `outpost-release sync --feed .* --s3 s3:\/\/outpost-feed\/feed --s3-endpoint http:\/\/127\.0\.0\.1:\d+ --s3-region us-east-1`/);
  assert.ok(s3.writes.length > writesBefore, 'the blobs went up before the cut');
  assert.equal(s3.text(TIMESTAMP), served, "the bucket's timestamp is untouched");
  assert.equal(await offered(lab, s3, reader), '1.0.0', 'a reader sees the previous release, and it verifies');
  s3.refuse(undefined);
  writesBefore = s3.writes.length;
  assert.match((await runOk(lab, sync)), /serves feed version 2; 2 files uploaded/, 'the snapshot and the timestamp');
  assertSafeOrder(s3.writes.slice(writesBefore));
  assertMirror(lab, s3);
  assert.equal(await offered(lab, s3, reader), '1.1.0');

  // SIGKILLed while its first new file object is being uploaded.
  served = s3.text(TIMESTAMP);
  writesBefore = s3.writes.length;
  const held = s3.hold((key) => key.includes('/files/'));
  const tool = releaseTool(lab, publishArgs(lab, s3, lab.app('1.2.0', V3), '1.2.0'));
  t.after(() => tool.kill('SIGKILL'));
  await held;
  tool.kill('SIGKILL');
  assert.equal((await tool.finish()).signal, 'SIGKILL');
  assert.ok(!s3.writes.slice(writesBefore).some((w) => w.key.includes('/metadata/')), 'no metadata went up');
  assert.equal(s3.text(TIMESTAMP), served, "the bucket's timestamp is untouched");
  assert.equal(await offered(lab, s3, reader), '1.1.0', 'a reader sees the previous release, and it verifies');

  // The killed tool's lock stays, as after any crash of a writer; the operator removes it, as the tool says.
  const locked = await run(lab, sync);
  assert.equal(locked.code, 65);
  assert.match(locked.stderr, /another publish holds .*\.publish\.lock; if none is running \(it crashed\), remove that file/);
  fs.rmSync(path.join(lab.feed, '.publish.lock'));
  const bucketBefore = new Set(s3.objects.keys());
  writesBefore = s3.writes.length;
  // SIGKILL came after the folder's commit (the tool was uploading): the folder holds 1.2.0, the bucket gets it.
  assert.match(await runOk(lab, sync), /serves feed version 3/);
  const finished = s3.writes.slice(writesBefore);
  assertCompletingUpload(finished, bucketBefore, 'what went up before the kill is not uploaded again');
  assertMirror(lab, s3);
  assert.equal(await offered(lab, s3, reader), '1.2.0');

  writesBefore = s3.writes.length;
  assert.match(await runOk(lab, sync), /0 files uploaded \(0 bytes, timestamp\.json last\), \d+ there already/, 'a sync with nothing to do writes nothing');
  assert.equal(s3.writes.length, writesBefore);
});

test('the bucket unreachable exits 69, credentials refused 77, no such bucket 66, a bucket holding another feed 65, a bad --s3 64: each saying so, the bucket serving its feed as before, no secret printed', async (t) => {
  const lab = new ReleaseLab(t);
  const s3 = await S3StandIn.start(t, { bucket: BUCKET, accessKeyId: 'OUTPOSTSTANDIN' });
  await runOk(lab, publishArgs(lab, s3, lab.app('1.0.0', V1), '1.0.0'));
  const served = s3.text(TIMESTAMP);
  const refresh = (s3Args: readonly string[]) => ['refresh', '--feed', lab.feed, '--key', lab.keys, ...s3Args];
  const cases = [
    { what: 'nothing listens at the endpoint', args: refresh(['--s3', `s3://${BUCKET}/${PREFIX}`, '--s3-endpoint', 'http://127.0.0.1:1']), env: awsEnv(lab), code: 69, says: /s3:\/\/outpost-feed\/feed at http:\/\/127\.0\.0\.1:1 could not be reached or refused a request \(ECONNREFUSED/ },
    { what: 'an access key the bucket does not know', args: refresh(bucketArgs(s3)), env: awsEnv(lab, 'SOMEONEELSE'), code: 77, says: /refused the credentials \(InvalidAccessKeyId, HTTP 403\): check the access key and its secret/ },
    { what: 'no such bucket', args: refresh(bucketArgs(s3, 'no-such-bucket')), env: awsEnv(lab), code: 66, says: /the bucket no-such-bucket does not exist/ },
    { what: 'not an s3:// URL', args: refresh(['--s3', 'https://bucket.example/feed']), env: awsEnv(lab), code: 64, says: /--s3 must be s3:\/\/BUCKET or s3:\/\/BUCKET\/PREFIX/ },
  ];
  for (const { what, args, env, code, says } of cases) {
    const done = await run(lab, args, env);
    assert.equal(done.code, code, `${what}: ${done.stderr}`);
    assert.match(done.stderr, says, what);
    if (code !== 64) assert.match(done.stderr, /Its timestamp\.json was not replaced: it still serves its previous feed, complete\. Run `outpost-release sync/, what);
    assert.ok(!(done.stdout + done.stderr).includes(SECRET), `${what}: no secret printed`);
    assert.equal(s3.text(TIMESTAMP), served, `${what}: the bucket is untouched`);
  }

  // Another feed folder (its own keys) pointed at the same prefix: its feed version is behind the bucket's.
  const other = new ReleaseLab(t);
  const stranger = await run(other, publishArgs(other, s3, other.app('9.0.0', V1), '9.0.0'));
  assert.equal(stranger.code, 65, stranger.stderr);
  assert.match(stranger.stderr, /serves feed version \d+, this folder's is 1: the bucket was published from another feed folder .* Nothing was uploaded/);
  assert.equal(s3.text(TIMESTAMP), served, 'the bucket is untouched');

  // The refreshes stood in the folder: a sync with good credentials brings the bucket up to it.
  assert.match(await runOk(lab, ['sync', '--feed', lab.feed, ...bucketArgs(s3)]), /serves feed version 4/);
  assertMirror(lab, s3);
});
