import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Metadata, MetadataKind, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp } from '@tufjs/models';
import semver from 'semver';
import { CATALOG_TARGET, Catalog, CHANNEL_NAME, ChannelPointer, channelTarget, DocumentRef, FEED_METADATA_DIR, storedTargetPath } from '../../app/common/release.js';
import { writeFileAtomic } from '../../app/base/durable-file.js';
import { type KeySet, type OnlineKeys, type RoleKey, type RoleName, signerFor } from './keys.js';
import { ObjectStore } from './object-store.js';
import { DEFAULT_CHUNKING, writeRelease } from './release-writer.js';

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
  /** Chunks that were not in the feed before, and the stored bytes of every new object: at most what an agent on the previous release downloads. */
  readonly newChunks: number;
  readonly newStoredBytes: number;
  readonly feedVersion: number;
}

/** A pointer as `channel` sets it: the version, not yet the manifest it names. */
export type ChannelSetting = Omit<ChannelPointer, 'manifest'>;

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
  static async withLock<T>(feedDir: string, fn: () => T | Promise<T>): Promise<T> {
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
      return await fn();
    } finally {
      fs.closeSync(fd);
      fs.rmSync(lock, { force: true });
    }
  }

  get feedVersion(): number {
    return this.#timestampVersion;
  }

  get feedDir(): string {
    return this.#options.feedDir;
  }

  /** The files of the current signed state: its metadata versions and its stored targets (prune keeps them). */
  currentFiles(): string[] {
    if (!this.#targets) return [];
    const metadataDir = path.join(this.#options.feedDir, FEED_METADATA_DIR);
    return [
      path.join(metadataDir, `${this.#targets.signed.version}.targets.json`),
      path.join(metadataDir, `${this.#snapshotVersion}.snapshot.json`),
      ...Object.values(this.#targets.signed.targets).map((info) => this.#stored(info)),
    ];
  }

  channel(name: string): ChannelPointer | null {
    const info = this.#targets?.signed.targets[channelTarget(name)];
    return info ? ChannelPointer.parse(readJson(this.#stored(info))) : null;
  }

  channels(): ChannelPointer[] {
    return this.#targetPaths('channels/').map((p) => ChannelPointer.parse(readJson(this.#stored(this.#target(p)))));
  }

  /** The published releases (oldest first) and those `prune` retired. */
  catalog(): Catalog {
    return this.#catalogIn(this.#targets?.signed.targets ?? {});
  }

  get objects(): ObjectStore {
    return new ObjectStore(this.#options.feedDir);
  }

  async publish(options: PublishOptions): Promise<PublishResult> {
    const { version, channel } = options;
    if (!semver.valid(version)) throw new Error(`"${version}" is not a semantic version (e.g. 1.4.0)`);
    const catalog = this.catalog();
    if (catalog.releases.some((r) => r.version === version)) throw new Error(`version ${version} is already published; a published release never changes`);
    const store = this.objects;
    const newest = catalog.releases.at(-1);
    const previous = newest && store.manifest(newest.manifest.sha256);
    const written = await writeRelease(store, options.appDir, version, DEFAULT_CHUNKING, previous);
    await store.flush();
    const targets = { ...(this.#targets?.signed.targets ?? {}) };
    const entry = { version, manifest: written.ref, published: this.#options.now().toISOString(), files: written.manifest.files.length, bytes: written.bytes };
    this.#writeCatalog(targets, { ...catalog, releases: [...catalog.releases, entry] });
    this.#pointChannel(targets, { channel, version, rollout_percent: options.rolloutPercent, min_version: options.minVersion }, options.allowOlder);
    this.#commit(targets);
    return {
      version,
      files: written.manifest.files.length,
      bytes: written.bytes,
      newChunks: written.newChunks,
      newStoredBytes: written.newStoredBytes,
      feedVersion: this.#timestampVersion,
    };
  }

  /**
   * Drills and tests only: publishes a manifest exactly as given, without the checks of `publish`
   * (paths, versions), each file stored as one chunk: to see that agents refuse what the release
   * tool would never write, even when it is signed.
   */
  async publishUnchecked(manifest: { version: string; files: ReadonlyArray<{ path: string; size: number; sha256: string; mode: number }> }, contents: readonly Buffer[], channel: string): Promise<void> {
    const store = this.objects;
    for (const bytes of contents) store.put('files', bytes);
    const ref = store.put('manifests', Buffer.from(JSON.stringify({ chunking: DEFAULT_CHUNKING, ...manifest })));
    await store.flush();
    const targets = { ...(this.#targets?.signed.targets ?? {}) };
    const pointer = { channel, version: manifest.version, rollout_percent: 100, min_version: null, manifest: { sha256: ref.sha256, length: ref.length } };
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
  setChannel(pointer: ChannelSetting, allowOlder: boolean): void {
    const targets = { ...(this.#targets?.signed.targets ?? {}) };
    this.#pointChannel(targets, pointer, allowOlder);
    this.#commit(targets);
  }

  /** Re-signs targets, snapshot and timestamp with fresh expiry dates (run before the timestamp expires). */
  refresh(): void {
    if (!this.#targets) throw new Error('the feed has nothing published yet');
    this.#commit({ ...this.#targets.signed.targets });
  }

  /** Drops releases from the catalog (prune.ts): they are no longer offered; their objects go later. */
  retire(versions: readonly string[]): void {
    const catalog = this.catalog();
    const now = this.#options.now().toISOString();
    const retired = catalog.releases.filter((r) => versions.includes(r.version)).map((r) => ({ version: r.version, manifest: r.manifest, retired: now }));
    const targets = { ...(this.#targets?.signed.targets ?? {}) };
    this.#writeCatalog(targets, { releases: catalog.releases.filter((r) => !versions.includes(r.version)), retired: [...catalog.retired, ...retired] });
    this.#commit(targets);
  }

  /** Forgets retired releases whose objects are gone (prune.ts). */
  forgetRetired(versions: readonly string[]): void {
    const catalog = this.catalog();
    const targets = { ...(this.#targets?.signed.targets ?? {}) };
    this.#writeCatalog(targets, { ...catalog, retired: catalog.retired.filter((r) => !versions.includes(r.version)) });
    this.#commit(targets);
  }

  #writeCatalog(targets: Record<string, TargetFile>, catalog: Catalog): void {
    targets[CATALOG_TARGET] = this.#storeTarget(CATALOG_TARGET, jsonBytes(Catalog.parse(catalog)));
  }

  #pointChannel(targets: Record<string, TargetFile>, setting: ChannelSetting, allowOlder: boolean): void {
    const release = this.#catalogIn(targets).releases.find((r) => r.version === setting.version);
    if (!release) throw new Error(`version ${setting.version} is not published in this feed`);
    const pointer: ChannelPointer = { ...setting, manifest: DocumentRef.parse(release.manifest) };
    if (!CHANNEL_NAME.test(pointer.channel)) throw new Error(`channel "${pointer.channel}" must be lower-case letters, digits and dashes`);
    if (pointer.min_version !== null && !semver.valid(pointer.min_version)) throw new Error(`minimum version "${pointer.min_version}" is not a semantic version`);
    const current = this.channel(pointer.channel);
    if (current && semver.lt(pointer.version, current.version) && !allowOlder) {
      throw new Error(`channel ${pointer.channel} offers ${current.version}; pointing it at the older ${pointer.version} needs --allow-older (agents will still refuse to downgrade unless their policy allows it)`);
    }
    const target = channelTarget(pointer.channel);
    targets[target] = this.#storeTarget(target, jsonBytes(ChannelPointer.parse(pointer)));
  }

  /** The catalog among `targets` (the signed ones, or a set being changed), releases oldest first. */
  #catalogIn(targets: Record<string, TargetFile>): Catalog {
    const info = targets[CATALOG_TARGET];
    const catalog = info ? Catalog.parse(readJson(this.#stored(info))) : { releases: [], retired: [] };
    return { ...catalog, releases: [...catalog.releases].sort((a, b) => semver.compare(a.version, b.version)) };
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
