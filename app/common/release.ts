import * as z from 'zod';

/**
 * What a release feed holds besides TUF's own metadata, shared by the release tool (which writes it)
 * and the agent (which reads it, validated with these schemas after TUF has verified the bytes).
 *
 * The feed is a TUF repository with consistent snapshots. Its targets:
 * - `channels/<channel>.json`: a ChannelPointer, the version a channel offers now and to whom;
 * - `releases/<version>.json`: a ReleaseManifest, every file of that version;
 * - `blobs/<sha256>.br`: one file's bytes, brotli-compressed, named by the SHA-256 of the raw
 *   bytes, so that a file unchanged between releases is one blob, downloaded once.
 * Every target is stored at `targets/<dir>/<sha256 of its bytes>.<name>` (TUF's consistent-snapshot
 * naming): a file, once published, never changes, and a reader never sees a half-written release.
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

export const ManifestFile = z
  .object({
    path: RelativeFilePath,
    size: z.number().int().nonnegative(),
    sha256,
    /** POSIX permission bits (0o755 for executables); Windows ignores them. */
    mode: z.number().int().min(0).max(0o777),
  })
  .strict();
export type ManifestFile = z.infer<typeof ManifestFile>;

export const ReleaseManifest = z
  .object({
    version: semver,
    files: z.array(ManifestFile).max(100_000),
  })
  .strict()
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
  })
  .strict();
export type ChannelPointer = z.infer<typeof ChannelPointer>;

export const channelTarget = (channel: string) => `channels/${channel}.json`;
export const manifestTarget = (version: string) => `releases/${version}.json`;
export const blobTarget = (rawSha256: string) => `blobs/${rawSha256}.br`;

/** Where a target's bytes are stored in the feed: `targets/<dir>/<sha256>.<name>`. */
export function storedTargetPath(targetPath: string, sha256Hex: string): string {
  const slash = targetPath.lastIndexOf('/');
  return `${FEED_TARGETS_DIR}/${targetPath.slice(0, slash + 1)}${sha256Hex}.${targetPath.slice(slash + 1)}`;
}
