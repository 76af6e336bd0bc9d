import { decodeIndex, decodePage, type FramedChunk, maxIndexBytes, maxPageBytes, pageId } from '../../../base/chunking.js';
import type { ManifestFile, ReleaseManifest } from '../../../common/release.js';
import { type FeedObjects, ObjectRefused } from './feed-objects.js';
import type { LocalChunks } from './local-chunks.js';

const PAGES_IN_FLIGHT = 8;

/**
 * Where a run of frames ends at the latest, in stored bytes: a file new to the agent is fetched as
 * several runs, in parallel, and a run cut off is resumed from its last verified chunk, not its start.
 */
const MAX_RUN_BYTES = 4 * 1024 * 1024;

/** A chunk of the new version: its SHA-256 and size. */
export interface ChunkNeed {
  readonly sha256: string;
  readonly size: number;
}

/**
 * Consecutive frames of one file's object (common/release.ts), fetched with one ranged request. A
 * file of one chunk has no page to give its frame's length: its run is the whole object (`start`
 * undefined), bounded by the most a frame of its size can be.
 */
export type FrameRun =
  | { readonly object: string; readonly start: number; readonly chunks: readonly FramedChunk[] }
  | { readonly object: string; readonly start: undefined; readonly chunks: readonly [ChunkNeed] };

/** Where each file of the new version comes from: a file the agent has with the same bytes, or chunks. */
export type FileSource = { readonly kind: 'whole'; readonly file: string } | { readonly kind: 'chunks'; readonly chunks: readonly ChunkNeed[] };

export interface PlannedFile {
  readonly file: ManifestFile;
  readonly source: FileSource;
}

export interface ReleasePlan {
  readonly files: readonly PlannedFile[];
  /** Chunks no local file or earlier download has: what is downloaded, each once. */
  readonly missing: readonly ChunkNeed[];
  /** The missing chunks as runs of consecutive frames: what is asked of the feed. */
  readonly runs: readonly FrameRun[];
  /** Files copied whole and chunks found locally, in bytes: what the agent did not download. */
  readonly reusedBytes: number;
}

/**
 * Works out what to download: for each file the agent does not have whole, its chunk list (the index
 * and the pages it cannot compute itself are fetched and verified), and of those chunks the ones it
 * holds nowhere, grouped into runs of consecutive frames. Indexes and pages are small; no chunk is
 * fetched here.
 */
export async function planRelease(manifest: ReleaseManifest, local: LocalChunks, objects: FeedObjects, signal: AbortSignal): Promise<ReleasePlan> {
  const files: PlannedFile[] = [];
  const missing = new Map<string, ChunkNeed>();
  const runs: FrameRun[] = [];
  let reusedBytes = 0;
  for (const file of manifest.files) {
    const whole = local.wholeFile(file.sha256);
    if (whole !== undefined) {
      files.push({ file, source: { kind: 'whole', file: whole } });
      reusedBytes += file.size;
      continue;
    }
    if (file.size === 0) {
      files.push({ file, source: { kind: 'chunks', chunks: [] } });
      continue;
    }
    const chunk = { sha256: file.sha256, size: file.size };
    const chunks = file.index ? await chunkList(manifest, file, local, objects, signal) : [{ chunk, at: undefined }];
    // The run being extended: frames that follow each other in the file's object.
    let open: { start: number; end: number; chunks: FramedChunk[] } | undefined;
    for (const { chunk, at } of chunks) {
      if (local.chunk(chunk.sha256)) {
        reusedBytes += chunk.size;
        continue;
      }
      // A chunk listed twice (in one file or two) is fetched once, where it first comes.
      if (missing.has(chunk.sha256)) continue;
      missing.set(chunk.sha256, chunk);
      if (at === undefined) {
        runs.push({ object: file.sha256, start: undefined, chunks: [chunk] });
        continue;
      }
      const framed = chunk as FramedChunk;
      if (open && open.end === at && open.end - open.start + framed.stored <= MAX_RUN_BYTES) {
        open.chunks.push(framed);
        open.end += framed.stored;
      } else {
        open = { start: at, end: at + framed.stored, chunks: [framed] };
        runs.push({ object: file.sha256, start: at, chunks: open.chunks });
      }
    }
    files.push({ file, source: { kind: 'chunks', chunks: chunks.map((c) => ({ sha256: c.chunk.sha256, size: c.chunk.size })) } });
  }
  return { files, missing: [...missing.values()], runs, reusedBytes };
}

/**
 * A file's chunks in order, each with where its frame starts in the file's object when the agent
 * had to fetch its page (it lacks some chunk of it); a page it computed from its own files holds no
 * chunk it lacks, and needs no frame lengths.
 */
async function chunkList(manifest: ReleaseManifest, file: ManifestFile, local: LocalChunks, objects: FeedObjects, signal: AbortSignal): Promise<Array<{ chunk: ChunkNeed | FramedChunk; at: number | undefined }>> {
  const { chunking } = manifest;
  const ref = file.index as NonNullable<ManifestFile['index']>;
  const index = decodeIndex(await objects.fetch('indexes', { sha256: ref.sha256, storedLength: ref.length, maxRaw: maxIndexBytes(file.size, chunking) }, signal));
  if (typeof index === 'string') throw new ObjectRefused(`the index of ${file.path} is not one (${index})`);
  const fetchPage = async (entry: (typeof index)[number]) => {
    const page = decodePage(await objects.fetch('pages', { sha256: entry.page, maxRaw: maxPageBytes(chunking) }, signal), chunking);
    if (typeof page === 'string') throw new ObjectRefused(`a page of ${file.path}'s index is not one (${page})`);
    if (pageId(page) !== entry.id || page.reduce((n, c) => n + c.stored, 0) !== entry.stored) throw new ObjectRefused(`a page of ${file.path} does not match its index entry`);
    return page;
  };
  // The pages the agent cannot compute, PAGES_IN_FLIGHT at a time: a file new to the agent has one
  // per MiB, and one after another they would cost a round trip each.
  const pages: Array<ReadonlyArray<ChunkNeed | FramedChunk>> = [];
  for (let i = 0; i < index.length; i += PAGES_IN_FLIGHT) {
    pages.push(...(await Promise.all(index.slice(i, i + PAGES_IN_FLIGHT).map((entry) => local.page(entry.id) ?? fetchPage(entry)))));
  }
  const chunks: Array<{ chunk: ChunkNeed | FramedChunk; at: number | undefined }> = [];
  let pageStart = 0;
  pages.forEach((page, i) => {
    let at = pageStart;
    for (const chunk of page) {
      const stored = 'stored' in chunk ? chunk.stored : undefined;
      chunks.push({ chunk, at: stored === undefined ? undefined : at });
      at += stored ?? 0;
    }
    pageStart += (index[i] as (typeof index)[number]).stored;
  });
  const total = chunks.reduce((n, c) => n + c.chunk.size, 0);
  if (total !== file.size) throw new ObjectRefused(`the chunks of ${file.path} add up to ${total} bytes, not its signed ${file.size}`);
  return chunks;
}
