import * as z from 'zod';

/**
 * What a release feed holds besides TUF's own metadata, shared by the release tool (which writes it)
 * and the agent (which reads it, validated with these schemas after its bytes are verified).
 *
 * TUF signs little, and that little does not grow with the feed's history: its targets are the
 * channel pointers (`channels/<channel>.json`) and the release tool's catalog (`releases.json`, which
 * agents never read). Everything else is content-addressed and verified by hash from a signed pointer
 * down, a Merkle chain (as git and casync do):
 * - a ChannelPointer names the version a channel offers, and its manifest by SHA-256 and length;
 * - a ReleaseManifest lists every file with its size and SHA-256, and for a file of more than one
 *   chunk, its index;
 * - an index lists the file's pages, a page lists chunks (SHA-256, size, and the length of the
 *   chunk's frame), both binary (app/base/chunking.ts); a chunk is the file's bytes between two
 *   content-defined cut points.
 * Manifests, indexes and pages are stored zstd-compressed under `<kind>/<xx>/<sha256>.zst`, named by
 * the SHA-256 of their raw bytes. A file is stored under its own SHA-256 as its chunks' zstd frames
 * one after another, each compressed on its own (`files/<xx>/<sha256>.zst`, which is also a valid zstd
 * stream of the whole file): an agent fetches a run of consecutive chunks it lacks with one ranged
 * request, whatever the run's length, and verifies each chunk by its hash as it arrives. A file
 * unchanged between releases is stored once, and a published object never changes.
 */

export const FEED_METADATA_DIR = 'metadata';
export const FEED_TARGETS_DIR = 'targets';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex');
const semver = z.string().regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/, 'must be a semantic version');
export const CHANNEL_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * A path inside the application folder: relative, forward slashes, no `.` or `..` segment, no empty
 * segment, nothing a file system would read as absolute or as a drive or device. Checked again by
 * the agent before it writes anything.
 */
export const RelativeFilePath = z
  .string()
  .min(1)
  .max(512)
  .refine((p) => !p.startsWith('/') && !p.includes('\\') && !/^[A-Za-z]:/.test(p), 'must be a relative path with forward slashes')
  .refine((p) => p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), 'must not contain empty, "." or ".." segments')
  .refine((p) => ![...p].some((c) => c.charCodeAt(0) < 0x20 || ':*?"<>|'.includes(c)), 'must not contain control or reserved characters');

/**
 * How files are cut into chunks and chunk lists into pages (app/base/chunking.ts). Part of each
 * manifest, so that the feed can change them without a new agent; the bounds keep a hostile manifest
 * from making an agent hold huge chunks or pages in memory.
 */
export const Chunking = z
  .object({
    min: z.number().int().min(64),
    avg: z.number().int().min(256).max(1 << 20).refine((n) => (n & (n - 1)) === 0, 'must be a power of two'),
    max: z.number().int().max(4 << 20),
    page_avg: z.number().int().min(1),
    page_max: z.number().int().max(4096),
  })
  .strict()
  .refine((c) => c.min < c.avg && c.avg < c.max, 'min < avg < max')
  .refine((c) => c.page_avg <= c.page_max, 'page_avg <= page_max');
export type Chunking = z.infer<typeof Chunking>;

/**
 * A content-addressed document of the feed (manifest, index, page): the SHA-256 of its raw bytes,
 * which the agent checks, and the length of its stored (compressed) form, past which it stops reading.
 */
export const DocumentRef = z.object({ sha256, length: z.number().int().positive().max(64 * 1024 * 1024) }).strict();
export type DocumentRef = z.infer<typeof DocumentRef>;

export const ManifestFile = z
  .object({
    path: RelativeFilePath,
    size: z.number().int().nonnegative(),
    sha256,
    /** POSIX permission bits (0o755 for executables); Windows ignores them. */
    mode: z.number().int().min(0).max(0o777),
    /** The file's chunk index; absent when the file is one chunk (its object is then one frame) or empty (no object). */
    index: DocumentRef.optional(),
  })
  .strict();
export type ManifestFile = z.infer<typeof ManifestFile>;

export const ReleaseManifest = z
  .object({
    version: semver,
    chunking: Chunking,
    files: z.array(ManifestFile).max(100_000),
  })
  .strict()
  .refine((m) => m.files.every((f) => f.index !== undefined || f.size <= m.chunking.max), 'a file bigger than one chunk without an index')
  .refine((m) => new Set(m.files.map((f) => f.path.toLowerCase())).size === m.files.length, 'two files with the same path (case-insensitively)');
export type ReleaseManifest = z.infer<typeof ReleaseManifest>;

export const ChannelPointer = z
  .object({
    channel: z.string().regex(CHANNEL_NAME),
    version: semver,
    /** Offered to this share of agents, chosen by a stable hash of the agent's id (0-100). */
    rollout_percent: z.number().int().min(0).max(100),
    /** Agents older than this do not take this release directly (null: any). */
    min_version: semver.nullable(),
    /** The release's manifest. */
    manifest: DocumentRef,
  })
  .strict();
export type ChannelPointer = z.infer<typeof ChannelPointer>;

/** The release tool's record of the feed: what is published, and what `prune` dropped (kept on disk for a grace period). */
export const Catalog = z
  .object({
    releases: z.array(z.object({ version: semver, manifest: DocumentRef, published: z.iso.datetime(), files: z.number().int(), bytes: z.number().int() }).strict()),
    retired: z.array(z.object({ version: semver, manifest: DocumentRef, retired: z.iso.datetime() }).strict()),
  })
  .strict();
export type Catalog = z.infer<typeof Catalog>;

export const channelTarget = (channel: string) => `channels/${channel}.json`;
export const CATALOG_TARGET = 'releases.json';

/** The kinds of content-addressed objects, each in its own folder of the feed. */
export const OBJECT_KINDS = ['manifests', 'indexes', 'pages', 'files'] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

/** Where an object is stored in the feed, by the SHA-256 of its raw bytes (two hex digits of fan-out keep folders small). */
export function objectPath(kind: ObjectKind, rawSha256: string): string {
  return `${kind}/${rawSha256.slice(0, 2)}/${rawSha256}.zst`;
}

/** The most a chunk of `size` raw bytes can take as a zstd frame: incompressible bytes grow by a few bytes per block. */
export function maxStoredChunkBytes(size: number): number {
  return size + (size >> 7) + 512;
}

/** Where a target's bytes are stored in the feed: `targets/<dir>/<sha256>.<name>`. */
export function storedTargetPath(targetPath: string, sha256Hex: string): string {
  const slash = targetPath.lastIndexOf('/');
  return `${FEED_TARGETS_DIR}/${targetPath.slice(0, slash + 1)}${sha256Hex}.${targetPath.slice(slash + 1)}`;
}
