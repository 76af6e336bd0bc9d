import fs from 'node:fs';
import path from 'node:path';
import { FEED_METADATA_DIR, FEED_TARGETS_DIR, OBJECT_KINDS } from '../../app/common/release.js';

/**
 * The order in which a copy of the feed must reach a store that has no rename (a bucket): what nothing
 * names yet, then the metadata that names it, then the one file that makes it all current. A reader
 * starts at timestamp.json, so until that one is replaced it sees the previous feed, complete.
 * - `blob`: content-addressed objects and stored targets (channel pointers, the catalog);
 * - `metadata`: `<n>.targets.json`, `<n>.snapshot.json`;
 * - `root`: `<n>.root.json`, just before the timestamp: a client fetches the next root first, and a
 *   new root that trusts a rotated key refuses the old timestamp, so the new root and the timestamp
 *   signed under it go up as close together as a bucket allows;
 * - `timestamp`: `timestamp.json`, last.
 */
export const PHASES = ['blob', 'metadata', 'root', 'timestamp'] as const;
export type Phase = (typeof PHASES)[number];

/** Cached for a year by browsers, CDNs and proxies: a published name never changes its bytes. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

export interface FeedFile {
  /** Its path in the feed, with `/` (the key under the bucket's prefix). */
  readonly relative: string;
  readonly absolute: string;
  readonly size: number;
  readonly phase: Phase;
}

const OBJECT = new RegExp(`^(${OBJECT_KINDS.join('|')})/[0-9a-f]{2}/[0-9a-f]{64}\\.zst$`);
const STORED_TARGET = new RegExp(`^${FEED_TARGETS_DIR}/(?:[a-z0-9-]+/)*[0-9a-f]{64}\\.[A-Za-z0-9._-]+\\.json$`);
const VERSIONED = new RegExp(`^${FEED_METADATA_DIR}/\\d+\\.(targets|snapshot|root)\\.json$`);
const TIMESTAMP = `${FEED_METADATA_DIR}/timestamp.json`;

/**
 * Which phase a path of the feed belongs to; null for anything that is not a published file (the
 * writer's lock, temp files, whatever else lies in the folder), which is never copied or removed.
 */
export function phaseOf(relative: string): Phase | null {
  if (relative === TIMESTAMP) return 'timestamp';
  const versioned = VERSIONED.exec(relative);
  if (versioned) return versioned[1] === 'root' ? 'root' : 'metadata';
  if (OBJECT.test(relative) || STORED_TARGET.test(relative)) return 'blob';
  return null;
}

/** The HTTP headers a published file is served with: those of `server/nginx/outpost-feed.conf`. */
export function headersOf(relative: string): { cacheControl: string; contentType: string } {
  return {
    // timestamp.json changes at every publish: revalidated each time. Everything else never changes.
    cacheControl: relative === TIMESTAMP ? 'no-cache' : IMMUTABLE,
    // zstd data (RFC 8878), never declared as a Content-Encoding: a client or CDN would decompress it,
    // and the agent verifies the stored bytes it asked for, ranges of them included.
    contentType: relative.endsWith('.json') ? 'application/json' : 'application/zstd',
  };
}

/** Every published file of the feed folder, in the order they must be uploaded (PHASES), by name within a phase. */
export function feedFiles(feedDir: string): FeedFile[] {
  const files: FeedFile[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const absolute = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(absolute);
      if (!entry.isFile()) continue;
      const relative = path.relative(feedDir, absolute).split(path.sep).join('/');
      const phase = phaseOf(relative);
      if (phase) files.push({ relative, absolute, size: fs.statSync(absolute).size, phase });
    }
  };
  walk(feedDir);
  const rank = (f: FeedFile) => PHASES.indexOf(f.phase);
  return files.sort((a, b) => rank(a) - rank(b) || (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
}
