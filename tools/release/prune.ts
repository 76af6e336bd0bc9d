import fs from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { decodeIndex } from '../../app/base/chunking.js';
import { type DocumentRef, FEED_METADATA_DIR, OBJECT_KINDS, type ObjectKind } from '../../app/common/release.js';
import type { FeedRepo } from './feed-repo.js';
import type { ObjectStore } from './object-store.js';

export interface PruneOptions {
  /** The newest releases kept (besides every release a channel offers). */
  readonly keep: number;
  /** How long a retired release's objects, and any object no release names, stay on disk: agents and caches that read the feed before the prune still find them. */
  readonly graceMs: number;
}

export interface PruneResult {
  readonly kept: readonly string[];
  readonly retired: readonly string[];
  /** Retired releases (now or earlier) whose objects were removed, the grace period being over. */
  readonly removedReleases: readonly string[];
  readonly removedObjects: number;
  readonly removedBytes: number;
}

/**
 * `outpost-release prune --keep N`: drops the releases beyond the newest N from the catalog (never one
 * a channel offers), then removes the objects that no kept release and no release retired within the
 * grace period names, once they are older than the grace period too. What is reachable is computed
 * from the manifests down (files, indexes, pages), so an object shared with a kept release stays
 * whichever release brought it. Old versions of the signed metadata go the same way.
 */
export function prune(repo: FeedRepo, options: PruneOptions, now: Date): PruneResult {
  const catalog = repo.catalog();
  const offered = new Set(repo.channels().map((c) => c.version));
  const newestFirst = [...catalog.releases].reverse();
  const kept = newestFirst.filter((r, i) => i < options.keep || offered.has(r.version));
  const retired = catalog.releases.filter((r) => !kept.includes(r)).map((r) => r.version);
  if (retired.length > 0) repo.retire(retired);

  const cutoff = now.getTime() - options.graceMs;
  const afterRetire = repo.catalog();
  const expired = afterRetire.retired.filter((r) => Date.parse(r.retired) <= cutoff);
  const graced = afterRetire.retired.filter((r) => Date.parse(r.retired) > cutoff);
  const store = repo.objects;
  const live = reachable(store, [...afterRetire.releases, ...graced].map((r) => r.manifest));
  let removedObjects = 0;
  let removedBytes = 0;
  for (const kind of OBJECT_KINDS) {
    for (const object of store.list(kind)) {
      if (live.has(`${kind}/${object.sha256}`) || object.mtimeMs > cutoff) continue;
      removedBytes += fs.statSync(object.file).size;
      fs.rmSync(object.file);
      removedObjects++;
    }
  }
  if (expired.length > 0) repo.forgetRetired(expired.map((r) => r.version));
  removeOldMetadata(repo, cutoff);
  return { kept: kept.map((r) => r.version).reverse(), retired, removedReleases: expired.map((r) => r.version).sort(semver.compare), removedObjects, removedBytes };
}

/** Every object the manifests name, directly or through indexes, as `<kind>/<sha256>`. */
function reachable(store: ObjectStore, manifests: readonly DocumentRef[]): Set<string> {
  const live = new Set<string>();
  const mark = (kind: ObjectKind, sha256: string) => live.add(`${kind}/${sha256}`);
  for (const ref of manifests) {
    mark('manifests', ref.sha256);
    const manifest = store.manifest(ref.sha256);
    for (const file of manifest.files) {
      if (file.size > 0) mark('files', file.sha256);
      if (!file.index) continue;
      mark('indexes', file.index.sha256);
      const pages = decodeIndex(store.read('indexes', file.index.sha256));
      if (typeof pages === 'string') throw new Error(`the index of ${file.path} in ${manifest.version} is damaged (${pages}); nothing was removed`);
      for (const entry of pages) mark('pages', entry.page);
    }
  }
  return live;
}

/**
 * Signed metadata versions older than the current ones (`<n>.targets.json`, `<n>.snapshot.json`) and
 * stored targets the current targets metadata does not name (old channel pointers and catalogs), once
 * past the grace period. Root versions stay: agents walk the chain of roots from the one they trust.
 */
function removeOldMetadata(repo: FeedRepo, cutoff: number): void {
  const current = new Set(repo.currentFiles());
  const old = (file: string) => !current.has(file) && fs.statSync(file).mtimeMs <= cutoff;
  const metadataDir = path.join(repo.feedDir, FEED_METADATA_DIR);
  for (const name of fs.readdirSync(metadataDir)) {
    const file = path.join(metadataDir, name);
    if (/^\d+\.(targets|snapshot)\.json$/.test(name) && old(file)) fs.rmSync(file);
  }
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (old(file)) fs.rmSync(file);
    }
  };
  walk(path.join(repo.feedDir, 'targets'));
}
