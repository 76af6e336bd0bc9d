import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { type Chunking, maxStoredChunkBytes } from '../common/release.js';

/**
 * Content-defined chunking, shared by the release tool (which cuts every file of a release) and the
 * agent (which cuts the files it already has, to know which chunks it holds). Both must cut the same
 * bytes at the same places forever, so the algorithm is written down here rather than taken from a
 * package whose next version might cut differently: FastCDC's normalised gear hash (Xia et al.,
 * USENIX ATC 2016), level 2. A cut depends only on the 32 bytes before it, so an insertion moves no
 * cut point after it, and a file that changes in one place changes in one or two chunks.
 *
 * Chunks are grouped into pages the same way one level up: a page ends after a chunk whose hash
 * says so (about one in `page_avg`), so that a change in one place of a 92 MiB file changes one
 * page of its index, and an agent computes the pages of the files it holds without downloading them.
 */

/** 256 fixed pseudo-random 32-bit values: byte i's contribution to the rolling hash. Part of the feed format. */
const GEAR = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) table[i] = createHash('sha256').update(`outpost-gear-${i}`).digest().readUInt32BE(0);
  return table;
})();

/** One chunk of a file: the SHA-256 of its bytes (hex), where it starts in the file, and its length. */
export interface FileChunk {
  readonly sha256: string;
  readonly offset: number;
  readonly size: number;
}

/** A page of a file's chunk list: its id (pageId) and its chunks. */
export interface ChunkPage {
  readonly id: string;
  readonly chunks: readonly FileChunk[];
}

export interface ChunkedFile {
  readonly sha256: string;
  readonly size: number;
  readonly chunks: readonly FileChunk[];
}

/** The length of the next chunk of `buf[start, end)`, where `end` is the end of the data or at least `start + max`. */
export function nextCut(buf: Uint8Array, start: number, end: number, chunking: Chunking): number {
  const { min, avg, max } = chunking;
  const remaining = end - start;
  if (remaining <= min) return remaining;
  const bits = Math.round(Math.log2(avg));
  // Normalised chunking: a harder mask (more bits) before the average size, an easier one after,
  // so that sizes cluster around the average (fewer tiny and fewer maximal chunks).
  const hard = (((1 << (bits + 2)) - 1) << (32 - bits - 2)) >>> 0;
  const easy = (((1 << (bits - 2)) - 1) << (32 - bits + 2)) >>> 0;
  const limit = start + Math.min(remaining, max);
  const middle = Math.min(limit, start + avg);
  let hash = 0;
  let i = start + min;
  for (; i < middle; i++) {
    hash = ((hash << 1) + (GEAR[buf[i] as number] as number)) >>> 0;
    if ((hash & hard) === 0) return i + 1 - start;
  }
  for (; i < limit; i++) {
    hash = ((hash << 1) + (GEAR[buf[i] as number] as number)) >>> 0;
    if ((hash & easy) === 0) return i + 1 - start;
  }
  return limit - start;
}

/** Cuts a whole buffer (small files, tests). */
export function chunkBuffer(bytes: Uint8Array, chunking: Chunking): FileChunk[] {
  const chunks: FileChunk[] = [];
  for (let offset = 0; offset < bytes.length; ) {
    const size = nextCut(bytes, offset, bytes.length, chunking);
    chunks.push({ sha256: sha256Hex(bytes.subarray(offset, offset + size)), offset, size });
    offset += size;
  }
  return chunks;
}

/** How much of a file is read at a time: one buffer of this plus a chunk, so that memory stays flat for any file. */
const READ_BLOCK = 1024 * 1024;

/**
 * Reads a file once: its SHA-256, its size and its chunks. `onChunk` sees each chunk's bytes (the
 * release tool stores the new ones) while they are in the read buffer: they are valid until it returns.
 */
export async function chunkFile(file: string, chunking: Chunking, onChunk?: (chunk: FileChunk, bytes: Buffer) => void | Promise<void>): Promise<ChunkedFile> {
  const whole = createHash('sha256');
  const chunks: FileChunk[] = [];
  const buffer = Buffer.allocUnsafe(READ_BLOCK + chunking.max);
  let filled = 0;
  let offset = 0;
  const handle = await fs.promises.open(file, 'r');
  try {
    for (let end = false; !end; ) {
      const { bytesRead } = await handle.read(buffer, filled, READ_BLOCK, null);
      whole.update(buffer.subarray(filled, filled + bytesRead));
      filled += bytesRead;
      end = bytesRead === 0;
      // A cut is final once `max` bytes follow the chunk's start (or the file has ended): it depends on nothing after it.
      let start = 0;
      while (filled - start >= (end ? 1 : chunking.max)) {
        const size = nextCut(buffer, start, filled, chunking);
        const bytes = buffer.subarray(start, start + size);
        const chunk = { sha256: sha256Hex(bytes), offset, size };
        chunks.push(chunk);
        await onChunk?.(chunk, bytes);
        offset += size;
        start += size;
      }
      buffer.copy(buffer, 0, start, filled);
      filled -= start;
    }
  } finally {
    await handle.close();
  }
  return { sha256: whole.digest('hex'), size: offset, chunks };
}

/** One chunk in a page id's input: its 32-byte SHA-256, then its length (uint32, big-endian). */
const CHUNK_ID_BYTES = 36;
/** One chunk in a stored page: as above, then the length of its zstd frame in the file's object (uint32, big-endian). */
const PAGE_ENTRY_BYTES = 40;
/** One page in an index: its id (32 bytes), the SHA-256 of its stored page (32), and its frames' total length (uint32, big-endian). */
const INDEX_ENTRY_BYTES = 68;

/** Groups a file's chunks into pages (content-defined: see the top of this file). */
export function splitPages(chunks: readonly FileChunk[], chunking: Chunking): ChunkPage[] {
  const pages: ChunkPage[] = [];
  let current: FileChunk[] = [];
  for (const chunk of chunks) {
    current.push(chunk);
    if (current.length >= chunking.page_max || Number.parseInt(chunk.sha256.slice(0, 8), 16) % chunking.page_avg === 0) {
      pages.push({ id: pageId(current), chunks: current });
      current = [];
    }
  }
  if (current.length > 0) pages.push({ id: pageId(current), chunks: current });
  return pages;
}

/**
 * A page's id: the SHA-256 of its chunks' hashes and sizes, which is all an agent knows of the
 * chunks it holds, so that it can tell a page of the feed it need not download. (The stored page also
 * gives each chunk's frame length, which only the feed knows: it has its own hash.)
 */
export function pageId(chunks: readonly Pick<FileChunk, 'sha256' | 'size'>[]): string {
  return sha256Hex(chunkEntries(chunks, CHUNK_ID_BYTES));
}

/** Each chunk's hash and size at the start of an entry of `entryBytes` (the rest left for the caller). */
function chunkEntries(chunks: readonly Pick<FileChunk, 'sha256' | 'size'>[], entryBytes: number): Buffer {
  const out = Buffer.alloc(chunks.length * entryBytes);
  chunks.forEach((chunk, i) => {
    out.write(chunk.sha256, i * entryBytes, 32, 'hex');
    out.writeUInt32BE(chunk.size, i * entryBytes + 32);
  });
  return out;
}

/** A chunk as a stored page lists it: its hash, its size, and the length of its frame in the file's object. */
export interface FramedChunk {
  readonly sha256: string;
  readonly size: number;
  readonly stored: number;
}

/** A stored page: what the feed keeps (compressed) under the SHA-256 of these bytes. */
export function encodePage(chunks: readonly FramedChunk[]): Buffer {
  const out = chunkEntries(chunks, PAGE_ENTRY_BYTES);
  chunks.forEach((chunk, i) => {
    out.writeUInt32BE(chunk.stored, i * PAGE_ENTRY_BYTES + CHUNK_ID_BYTES);
  });
  return out;
}

/** A stored page's chunks, or a sentence saying why the bytes are not a page these parameters allow. */
export function decodePage(bytes: Buffer, chunking: Chunking): FramedChunk[] | string {
  if (bytes.length === 0 || bytes.length % PAGE_ENTRY_BYTES !== 0) return `${bytes.length} bytes is not a whole number of entries`;
  const count = bytes.length / PAGE_ENTRY_BYTES;
  if (count > chunking.page_max) return `${count} chunks, more than a page holds (${chunking.page_max})`;
  const entries: FramedChunk[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * PAGE_ENTRY_BYTES;
    const size = bytes.readUInt32BE(at + 32);
    const stored = bytes.readUInt32BE(at + 36);
    if (size === 0 || size > chunking.max) return `a chunk of ${size} bytes (at most ${chunking.max})`;
    if (stored === 0 || stored > maxStoredChunkBytes(size)) return `a frame of ${stored} bytes for a chunk of ${size}`;
    entries.push({ sha256: bytes.toString('hex', at, at + 32), size, stored });
  }
  return entries;
}

/** A page as an index lists it. */
export interface IndexEntry {
  /** pageId() of its chunks. */
  readonly id: string;
  /** The SHA-256 of the stored page (encodePage). */
  readonly page: string;
  /** The total length of its chunks' frames: where the next page's frames start in the file's object. */
  readonly stored: number;
}

/** A file's index: its pages, in order. */
export function encodeIndex(entries: readonly IndexEntry[]): Buffer {
  const out = Buffer.alloc(entries.length * INDEX_ENTRY_BYTES);
  entries.forEach((entry, i) => {
    out.write(entry.id, i * INDEX_ENTRY_BYTES, 32, 'hex');
    out.write(entry.page, i * INDEX_ENTRY_BYTES + 32, 32, 'hex');
    out.writeUInt32BE(entry.stored, i * INDEX_ENTRY_BYTES + 64);
  });
  return out;
}

export function decodeIndex(bytes: Buffer): IndexEntry[] | string {
  if (bytes.length === 0 || bytes.length % INDEX_ENTRY_BYTES !== 0) return `${bytes.length} bytes is not a whole number of index entries`;
  const entries: IndexEntry[] = [];
  for (let at = 0; at < bytes.length; at += INDEX_ENTRY_BYTES) {
    const stored = bytes.readUInt32BE(at + 64);
    if (stored === 0) return 'a page of no bytes';
    entries.push({ id: bytes.toString('hex', at, at + 32), page: bytes.toString('hex', at + 32, at + 64), stored });
  }
  return entries;
}

/** The most raw bytes a stored page can have: what the download of one may decompress to. */
export function maxPageBytes(chunking: Chunking): number {
  return chunking.page_max * PAGE_ENTRY_BYTES;
}

/** The most raw bytes the index of a file of `size` bytes can have. */
export function maxIndexBytes(size: number, chunking: Chunking): number {
  // Every chunk but the last is at least `min` bytes, and a page holds at least one chunk.
  return (Math.ceil(size / chunking.min) + 1) * INDEX_ENTRY_BYTES;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
