import { decodeIndex, decodePage, maxIndexBytes, maxPageBytes } from '../../../base/chunking.js';
import type { ManifestFile, ReleaseManifest } from '../../../common/release.js';
import type { ChunkNeed } from './chunk-download.js';
import { type FeedObjects, ObjectRefused } from './feed-objects.js';
import type { LocalChunks } from './local-chunks.js';

const PAGES_IN_FLIGHT = 8;

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
  /** Files copied whole and chunks found locally, in bytes: what the agent did not download. */
  readonly reusedBytes: number;
}

/**
 * Works out what to download: for each file the agent does not have whole, its chunk list (the index
 * and the pages it cannot compute itself are fetched and verified), and of those chunks the ones it
 * holds nowhere. Indexes and pages are small; no chunk is fetched here.
 */
export async function planRelease(manifest: ReleaseManifest, local: LocalChunks, objects: FeedObjects, signal: AbortSignal): Promise<ReleasePlan> {
  const files: PlannedFile[] = [];
  const missing = new Map<string, ChunkNeed>();
  let reusedBytes = 0;
  for (const file of manifest.files) {
    const whole = local.wholeFile(file.sha256);
    if (whole !== undefined) {
      files.push({ file, source: { kind: 'whole', file: whole } });
      reusedBytes += file.size;
      continue;
    }
    const chunks = file.index ? await chunkList(manifest, file, local, objects, signal) : file.size === 0 ? [] : [{ sha256: file.sha256, size: file.size }];
    for (const chunk of chunks) {
      if (local.chunk(chunk.sha256)) reusedBytes += chunk.size;
      else missing.set(chunk.sha256, chunk);
    }
    files.push({ file, source: { kind: 'chunks', chunks } });
  }
  return { files, missing: [...missing.values()], reusedBytes };
}

async function chunkList(manifest: ReleaseManifest, file: ManifestFile, local: LocalChunks, objects: FeedObjects, signal: AbortSignal): Promise<ChunkNeed[]> {
  const { chunking } = manifest;
  const index = file.index as NonNullable<ManifestFile['index']>;
  const pageIds = decodeIndex(await objects.fetch('indexes', { sha256: index.sha256, storedLength: index.length, maxRaw: maxIndexBytes(file.size, chunking) }, signal));
  if (typeof pageIds === 'string') throw new ObjectRefused(`the index of ${file.path} is not one (${pageIds})`);
  const fetchPage = async (id: string) => {
    const decoded = decodePage(await objects.fetch('pages', { sha256: id, maxRaw: maxPageBytes(chunking) }, signal), chunking);
    if (typeof decoded === 'string') throw new ObjectRefused(`a page of ${file.path}'s index is not one (${decoded})`);
    return decoded;
  };
  // The pages the agent cannot compute, PAGES_IN_FLIGHT at a time: a file new to the agent has one
  // per MiB, and one after another they would cost a round trip each.
  const pages: Array<ReadonlyArray<ChunkNeed>> = [];
  for (let i = 0; i < pageIds.length; i += PAGES_IN_FLIGHT) {
    pages.push(...(await Promise.all(pageIds.slice(i, i + PAGES_IN_FLIGHT).map((id) => local.page(id) ?? fetchPage(id)))));
  }
  const chunks = pages.flat();
  const total = chunks.reduce((n, c) => n + c.size, 0);
  if (total !== file.size) throw new ObjectRefused(`the chunks of ${file.path} add up to ${total} bytes, not its signed ${file.size}`);
  return chunks;
}
