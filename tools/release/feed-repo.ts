import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants as zlib } from 'node:zlib';
import { Metadata, MetadataKind, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp } from '@tufjs/models';
import semver from 'semver';
import {
  blobTarget,
  CHANNEL_NAME,
  ChannelPointer,
  channelTarget,
  FEED_METADATA_DIR,
  type ManifestFile,
  ReleaseManifest,
  manifestTarget,
  RelativeFilePath,
  storedTargetPath,
} from '../../app/common/release.js';
import { writeFileAtomic } from '../../app/base/durable-file.js';
import { type KeySet, type OnlineKeys, type RoleKey, type RoleName, signerFor } from './keys.js';

const SPEC_VERSION = '1.0.31';
const DAY_MS = 24 * 60 * 60 * 1000;
/** How long each role's signature is good for: short for the roles re-signed often (freeze attacks). */
export const DEFAULT_EXPIRY_DAYS: Readonly<Record<RoleName, number>> = { root: 365, targets: 90, snapshot: 30, timestamp: 7 };

export interface FeedOptions {
  readonly feedDir: string;
  /** The online roles' keys (root's is not needed to publish); null: read only (`list`). */
  readonly keys: OnlineKeys | null;
  readonly now: () => Date;
  /** Overrides every non-root expiry (tests and drills: an already expired feed). */
  readonly expires?: Date;
}

export interface PublishOptions {
  readonly appDir: string;
  readonly version: string;
  readonly channel: string;
  readonly rolloutPercent: number;
  readonly minVersion: string | null;
  /** Point the channel at a version older than the one it offers now (agents still refuse a downgrade). */
  readonly allowOlder: boolean;
}

export interface PublishResult {
  readonly version: string;
  readonly files: number;
  readonly bytes: number;
  /** Blobs that were not in the feed before: what an agent on the previous release downloads. */
  readonly newBlobs: number;
  readonly newBlobBytes: number;
  readonly feedVersion: number;
}

/** The signed root of a new feed (version 1), written by `keygen` as the agents' trust anchor. */
export function newRoot(keys: KeySet, now: Date): Metadata<Root> {
  const root = new Metadata(new Root({ version: 1, specVersion: SPEC_VERSION, expires: expiry(now, DEFAULT_EXPIRY_DAYS.root), consistentSnapshot: true }));
  for (const role of ['root', 'targets', 'snapshot', 'timestamp'] as const) root.signed.addKey(keys[role].key, role);
  root.sign(signerFor(keys.root));
  return root;
}

/**
 * A feed folder and its signed state. Every change writes new, versioned targets and snapshot
 * metadata, then replaces timestamp.json by rename, last: a reader sees the old feed or the new one,
 * never a mix. One writer at a time (a lock file in the feed).
 */
export class FeedRepo {
  readonly #options: FeedOptions;
  #targets: Metadata<Targets> | null;
  #snapshotVersion: number;
  #timestampVersion: number;

  private constructor(options: FeedOptions, targets: Metadata<Targets> | null, snapshotVersion: number, timestampVersion: number) {
    this.#options = options;
    this.#targets = targets;
    this.#snapshotVersion = snapshotVersion;
    this.#timestampVersion = timestampVersion;
  }

  /** Opens a feed; a new (empty) feed takes `initialRoot` as its first root. */
  static open(options: FeedOptions, initialRoot: Metadata<Root> | null): FeedRepo {
    const metadataDir = path.join(options.feedDir, FEED_METADATA_DIR);
    fs.mkdirSync(metadataDir, { recursive: true });
    let rootVersion = 0;
    for (const name of fs.readdirSync(metadataDir)) {
      const match = /^(\d+)\.root\.json$/.exec(name);
      if (match) rootVersion = Math.max(rootVersion, Number(match[1]));
    }
    if (rootVersion === 0) {
      if (!initialRoot) throw new Error(`${options.feedDir} has no root metadata; publish with the keys folder that holds root.json`);
      writeJson(path.join(metadataDir, '1.root.json'), initialRoot.toJSON());
      rootVersion = 1;
    }
    const root = Metadata.fromJSON(MetadataKind.Root, readJson(path.join(metadataDir, `${rootVersion}.root.json`)));
    for (const role of ['targets', 'snapshot', 'timestamp'] as const) {
      const trusted = root.signed.roles[role]?.keyIDs ?? [];
      if (options.keys && !trusted.includes(options.keys[role].key.keyID)) {
        throw new Error(`the ${role} key given is not one the feed's root (version ${rootVersion}) trusts; use the feed's keys, or rotate keys first`);
      }
    }
    const timestampFile = path.join(metadataDir, 'timestamp.json');
    if (!fs.existsSync(timestampFile)) return new FeedRepo(options, null, 0, 0);
    const timestamp = Metadata.fromJSON(MetadataKind.Timestamp, readJson(timestampFile));
    const snapshotVersion = timestamp.signed.snapshotMeta.version;
    const snapshot = Metadata.fromJSON(MetadataKind.Snapshot, readJson(path.join(metadataDir, `${snapshotVersion}.snapshot.json`)));
    const targetsVersion = snapshot.signed.meta['targets.json']?.version;
    if (targetsVersion === undefined) throw new Error(`snapshot ${snapshotVersion} names no targets.json`);
    const targets = Metadata.fromJSON(MetadataKind.Targets, readJson(path.join(metadataDir, `${targetsVersion}.targets.json`)));
    return new FeedRepo(options, targets, snapshotVersion, timestamp.signed.version);
  }

  /** Runs `fn` holding the feed's writer lock. */
  static withLock<T>(feedDir: string, fn: () => T): T {
    fs.mkdirSync(feedDir, { recursive: true });
    const lock = path.join(feedDir, '.publish.lock');
    let fd: number;
    try {
      fd = fs.openSync(lock, 'wx');
    } catch {
      throw new Error(`another publish holds ${lock}; if none is running (it crashed), remove that file and try again`);
    }
    try {
      fs.writeSync(fd, String(process.pid));
      return fn();
    } finally {
      fs.closeSync(fd);
      fs.rmSync(lock, { force: true });
    }
  }

  get feedVersion(): number {
    return this.#timestampVersion;
  }

  channel(name: string): ChannelPointer | null {
    const info = this.#targets?.signed.targets[channelTarget(name)];
    return info ? ChannelPointer.parse(readJson(this.#stored(info))) : null;
  }

  channels(): ChannelPointer[] {
    return this.#targetPaths('channels/').map((p) => ChannelPointer.parse(readJson(this.#stored(this.#target(p)))));
  }

  releases(): ReleaseManifest[] {
    return this.#targetPaths('releases/')
      .map((p) => ReleaseManifest.parse(readJson(this.#stored(this.#target(p)))))
      .sort((a, b) => semver.compare(a.version, b.version));
  }

  publish(options: PublishOptions): PublishResult {
    const { version, channel } = options;
    if (!semver.valid(version)) throw new Error(`"${version}" is not a semantic version (e.g. 1.4.0)`);
    if (this.#targets?.signed.targets[manifestTarget(version)]) throw new Error(`version ${version} is already published; a published release never changes`);
    const files = readAppFolder(options.appDir);
    const targets = { ...(this.#targets?.signed.targets ?? {}) };
    let newBlobs = 0;
    let newBlobBytes = 0;
    for (const file of files) {
      const target = blobTarget(file.sha256);
      if (targets[target]) continue;
      const compressed = brotliCompressSync(fs.readFileSync(file.absolute), { params: { [zlib.BROTLI_PARAM_QUALITY]: 9, [zlib.BROTLI_PARAM_SIZE_HINT]: file.size } });
      targets[target] = this.#storeTarget(target, compressed);
      newBlobs++;
      newBlobBytes += compressed.length;
    }
    const manifest: ReleaseManifest = ReleaseManifest.parse({ version, files: files.map(({ path: p, size, sha256, mode }) => ({ path: p, size, sha256, mode })) });
    targets[manifestTarget(version)] = this.#storeTarget(manifestTarget(version), jsonBytes(manifest));
    this.#pointChannel(targets, { channel, version, rollout_percent: options.rolloutPercent, min_version: options.minVersion }, options.allowOlder);
    this.#commit(targets);
    return { version, files: files.length, bytes: files.reduce((n, f) => n + f.size, 0), newBlobs, newBlobBytes, feedVersion: this.#timestampVersion };
  }

  /**
   * Drills and tests only: publishes a manifest exactly as given, without the checks of `publish`
   * (paths, versions), with the given file contents as blobs: to see that agents refuse what the
   * release tool would never write, even when it is signed.
   */
  publishUnchecked(manifest: { version: string; files: ReadonlyArray<{ path: string; size: number; sha256: string; mode: number }> }, contents: readonly Buffer[], channel: string): void {
    const targets = { ...(this.#targets?.signed.targets ?? {}) };
    for (const bytes of contents) {
      const target = blobTarget(sha256(bytes));
      targets[target] ??= this.#storeTarget(target, brotliCompressSync(bytes));
    }
    targets[manifestTarget(manifest.version)] = this.#storeTarget(manifestTarget(manifest.version), jsonBytes(manifest));
    const pointer: ChannelPointer = { channel, version: manifest.version, rollout_percent: 100, min_version: null };
    targets[channelTarget(channel)] = this.#storeTarget(channelTarget(channel), jsonBytes(pointer));
    this.#commit(targets);
  }

  /**
   * Drills and tests only: re-signs the feed with a published target described by the hashes
   * `describe` gives for its bytes instead of its SHA-256 (other algorithms, wrong values), the bytes
   * also stored under the first hash listed (where a client that knows it looks): to see that agents
   * check every hash listed.
   */
  describeTargetUnchecked(targetPath: string, describe: (bytes: Buffer) => Record<string, string>): void {
    const info = this.#target(targetPath);
    const bytes = fs.readFileSync(this.#stored(info));
    const hashes = describe(bytes);
    const first = Object.values(hashes)[0];
    if (first !== undefined) {
      const file = path.join(this.#options.feedDir, storedTargetPath(targetPath, first));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      if (!fs.existsSync(file)) writeBytes(file, bytes);
    }
    this.#commit({ ...this.#targets?.signed.targets, [targetPath]: new TargetFile({ path: targetPath, length: bytes.length, hashes }) });
  }

  /** Points a channel at a published version, or widens/narrows its rollout. */
  setChannel(pointer: ChannelPointer, allowOlder: boolean): void {
    const targets = { ...(this.#targets?.signed.targets ?? {}) };
    if (!targets[manifestTarget(pointer.version)]) throw new Error(`version ${pointer.version} is not published in this feed`);
    this.#pointChannel(targets, pointer, allowOlder);
    this.#commit(targets);
  }

  /** Re-signs targets, snapshot and timestamp with fresh expiry dates (run before the timestamp expires). */
  refresh(): void {
    if (!this.#targets) throw new Error('the feed has nothing published yet');
    this.#commit({ ...this.#targets.signed.targets });
  }

  #pointChannel(targets: Record<string, TargetFile>, pointer: ChannelPointer, allowOlder: boolean): void {
    if (!CHANNEL_NAME.test(pointer.channel)) throw new Error(`channel "${pointer.channel}" must be lower-case letters, digits and dashes`);
    if (pointer.min_version !== null && !semver.valid(pointer.min_version)) throw new Error(`minimum version "${pointer.min_version}" is not a semantic version`);
    const current = this.channel(pointer.channel);
    if (current && semver.lt(pointer.version, current.version) && !allowOlder) {
      throw new Error(`channel ${pointer.channel} offers ${current.version}; pointing it at the older ${pointer.version} needs --allow-older (agents will still refuse to downgrade unless their policy allows it)`);
    }
    const target = channelTarget(pointer.channel);
    targets[target] = this.#storeTarget(target, jsonBytes(ChannelPointer.parse(pointer)));
  }

  /** Writes new targets, snapshot and timestamp metadata; the rename of timestamp.json is the commit. */
  #commit(targets: Record<string, TargetFile>): void {
    const { keys } = this.#options;
    if (!keys) throw new Error('this feed was opened read-only');
    const now = this.#options.now();
    const expires = (role: RoleName) => this.#options.expires?.toISOString().replace(/\.\d{3}Z$/, 'Z') ?? expiry(now, DEFAULT_EXPIRY_DAYS[role]);
    const metadataDir = path.join(this.#options.feedDir, FEED_METADATA_DIR);
    /** Signs one role's metadata and writes it under `name`; returns its bytes and what refers to it. */
    const write = <T extends Targets | Snapshot | Timestamp>(signed: T, key: RoleKey, name: string) => {
      const metadata = new Metadata(signed);
      metadata.sign(signerFor(key));
      const bytes = jsonBytes(metadata.toJSON());
      writeBytes(path.join(metadataDir, name), bytes);
      return { metadata, meta: new MetaFile({ version: signed.version, length: bytes.length, hashes: { sha256: sha256(bytes) } }) };
    };
    const targetsVersion = (this.#targets?.signed.version ?? 0) + 1;
    const written = write(new Targets({ version: targetsVersion, specVersion: SPEC_VERSION, expires: expires('targets'), targets }), keys.targets, `${targetsVersion}.targets.json`);
    const snapshotVersion = this.#snapshotVersion + 1;
    const snapshot = new Snapshot({ version: snapshotVersion, specVersion: SPEC_VERSION, expires: expires('snapshot'), meta: { 'targets.json': written.meta } });
    const snapshotMeta = write(snapshot, keys.snapshot, `${snapshotVersion}.snapshot.json`).meta;
    const timestampVersion = this.#timestampVersion + 1;
    // The point of publication: until this rename, readers see the previous feed in full.
    write(new Timestamp({ version: timestampVersion, specVersion: SPEC_VERSION, expires: expires('timestamp'), snapshotMeta }), keys.timestamp, 'timestamp.json');

    this.#targets = written.metadata;
    this.#snapshotVersion = snapshotVersion;
    this.#timestampVersion = timestampVersion;
  }

  #storeTarget(targetPath: string, bytes: Buffer): TargetFile {
    const hash = sha256(bytes);
    const file = path.join(this.#options.feedDir, storedTargetPath(targetPath, hash));
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      writeBytes(file, bytes);
    }
    return new TargetFile({ path: targetPath, length: bytes.length, hashes: { sha256: hash } });
  }

  #stored(info: TargetFile): string {
    return path.join(this.#options.feedDir, storedTargetPath(info.path, info.hashes.sha256 as string));
  }

  #target(targetPath: string): TargetFile {
    const info = this.#targets?.signed.targets[targetPath];
    if (!info) throw new Error(`no target ${targetPath}`);
    return info;
  }

  #targetPaths(prefix: string): string[] {
    return Object.keys(this.#targets?.signed.targets ?? {}).filter((p) => p.startsWith(prefix));
  }
}

interface AppFile extends ManifestFile {
  readonly absolute: string;
}

/** Every regular file of the application folder; a symlink or anything else is refused, not followed. */
function readAppFolder(appDir: string): AppFile[] {
  const root = path.resolve(appDir);
  if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`--app ${appDir} is not a folder`);
  const files: AppFile[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const absolute = path.join(dir, entry.name);
      const relative = path.relative(root, absolute).split(path.sep).join('/');
      if (entry.isDirectory()) walk(absolute);
      else if (entry.isFile()) {
        const checked = RelativeFilePath.safeParse(relative);
        if (!checked.success) throw new Error(`${relative}: ${checked.error.issues[0]?.message}`);
        const bytes = fs.readFileSync(absolute);
        const mode = fs.statSync(absolute).mode & 0o111 ? 0o755 : 0o644;
        files.push({ absolute, path: relative, size: bytes.length, sha256: sha256(bytes), mode });
      } else throw new Error(`${relative} is not a regular file (a symlink or a device); a release holds regular files only`);
    }
  };
  walk(root);
  if (files.length === 0) throw new Error(`--app ${appDir} holds no files`);
  return files;
}

function expiry(now: Date, days: number): string {
  return new Date(now.getTime() + days * DAY_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function jsonBytes(value: unknown): Buffer {
  // Compact: agents download the targets metadata and manifests at every release, so every byte counts.
  return Buffer.from(JSON.stringify(value));
}

function readJson(file: string) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function writeJson(file: string, value: unknown): void {
  writeBytes(file, jsonBytes(value));
}

/** Temp file, fsync, rename: a reader (the server, a CDN sync) never sees a partial file. */
function writeBytes(file: string, bytes: Buffer): void {
  writeFileAtomic(file, bytes, 0o644);
}
