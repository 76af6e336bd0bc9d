import { hash } from 'node:crypto';
import { zstdDecompressSync } from 'node:zlib';
import type { Readable } from 'node:stream';
import axios, { type AxiosInstance } from 'axios';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { describeError, ErrorCode, isOutpostError, OutpostError } from '../../../base/errors.js';
import { maxStoredChunkBytes, type ObjectKind, objectPath } from '../../../common/release.js';
import { fetchBytes } from './fetch-bytes.js';
import { FrameSplitter } from './frame-splitter.js';
import type { ChunkNeed, FrameRun } from './release-plan.js';

/** How errors name an object of each kind. */
const OBJECT_NAME: Readonly<Record<ObjectKind, string>> = { manifests: 'manifest', indexes: 'index', pages: 'page', files: 'file' };

/** What the agent knows of an object before it fetches it, from the verified document that names it. */
export interface ObjectExpectation {
  readonly sha256: string;
  /** The stored (compressed) length, when the naming document gives it (manifests, indexes). */
  readonly storedLength?: number;
  /** The raw length, when known (chunks); else `maxRaw` bounds it. */
  readonly size?: number;
  readonly maxRaw: number;
}

/**
 * The feed's content-addressed objects (common/release.ts), fetched and verified: at most the bytes
 * the expectation allows are read (an endless answer is cut off), decompressed to at most the raw
 * length allowed, and the SHA-256 of the raw bytes must be the one the verified parent names. Only
 * then does a caller see them. Counts the bytes that came over the wire.
 */
export class FeedObjects {
  readonly #http: AxiosInstance;
  readonly #baseUrl: string;
  readonly #timeoutMs: number;
  #wireBytes = 0;

  constructor(http: AxiosInstance, baseUrl: string, timeoutMs: number) {
    this.#http = http;
    this.#baseUrl = baseUrl;
    this.#timeoutMs = timeoutMs;
  }

  /** Bytes received so far (stored, compressed), whether they verified or not. */
  get wireBytes(): number {
    return this.#wireBytes;
  }

  url(kind: ObjectKind, sha256: string): string {
    return new URL(objectPath(kind, sha256), this.#baseUrl).toString();
  }

  async fetch(kind: ObjectKind, expected: ObjectExpectation, signal?: AbortSignal): Promise<Buffer> {
    const url = this.url(kind, expected.sha256);
    const what = `${OBJECT_NAME[kind]} ${expected.sha256.slice(0, 12)}`;
    const maxStored = expected.storedLength ?? maxStoredChunkBytes(expected.size ?? expected.maxRaw);
    let stored: Buffer;
    try {
      stored = await fetchBytes(this.#http, url, maxStored, this.#timeoutMs, signal);
    } catch (error) {
      throw error instanceof DownloadHTTPError ? httpFailure(url, error.statusCode, error) : error;
    }
    this.#wireBytes += stored.length;
    if (expected.storedLength !== undefined && stored.length !== expected.storedLength) {
      throw new ObjectRefused(`the ${what} is ${stored.length} bytes, not its signed ${expected.storedLength} (truncated or replaced on the way)`);
    }
    return openFrame(what, stored, expected);
  }

  /**
   * Fetches a run of frames of a file's object with one ranged request (the whole object when the
   * run is a file of one chunk), and hands the chunks to `onChunks` as soon as their frames have come
   * and verified (those of one network read together), so that a run cut off keeps what came before
   * the cut. Reads no byte past the run; nothing received for the timeout aborts it.
   */
  async fetchRun(run: FrameRun, signal: AbortSignal, onChunks: (verified: readonly VerifiedChunk[]) => void): Promise<void> {
    const url = this.url('files', run.object);
    const open = (chunk: ChunkNeed, frame: Buffer): VerifiedChunk => ({ ...chunk, raw: openFrame(`chunk ${chunk.sha256.slice(0, 12)}`, frame, { sha256: chunk.sha256, size: chunk.size, maxRaw: chunk.size }) });
    const controller = new AbortController();
    const abort = () => controller.abort();
    signal.addEventListener('abort', abort, { once: true });
    let stall = setTimeout(abort, this.#timeoutMs);
    let received = 0;
    // Every read counts on the wire and restarts the stall timer.
    const arrived = (data: Buffer) => {
      received += data.length;
      this.#wireBytes += data.length;
      clearTimeout(stall);
      stall = setTimeout(abort, this.#timeoutMs);
    };
    try {
      if (run.start === undefined) {
        const [chunk] = run.chunks;
        const { body, frames } = await this.#get(url, undefined, controller.signal);
        const limit = maxStoredChunkBytes(chunk.size);
        for await (const data of body) {
          arrived(data);
          if (received > limit) throw new ObjectRefused(`the answer for ${url} was longer than the ${limit} bytes allowed for it (endless data?), so it was cut off there and not used`);
          frames.push(data);
        }
        onChunks([open(chunk, frames.rest())]);
        return;
      }
      const length = run.chunks.reduce((n, c) => n + c.stored, 0);
      const { body, frames } = await this.#get(url, { start: run.start, end: run.start + length - 1 }, controller.signal);
      let next = 0;
      for await (const data of body) {
        arrived(data);
        frames.push(data);
        const verified: VerifiedChunk[] = [];
        try {
          for (let chunk = run.chunks[next]; chunk !== undefined; chunk = run.chunks[next]) {
            const frame = frames.take(chunk.stored);
            if (!frame) break;
            verified.push(open(chunk, frame));
            next++;
          }
        } finally {
          // Those verified before a refused one are kept all the same.
          if (verified.length > 0) onChunks(verified);
        }
        if (next === run.chunks.length) {
          body.destroy();
          return;
        }
      }
      throw new OutpostError(ErrorCode.UPDATE_DOWNLOAD, `Download of ${url} was cut off after ${received} of ${length} bytes (it resumes from there).`);
    } catch (error) {
      if (isOutpostError(error)) throw error;
      const why = signal.aborted ? 'the agent is shutting down' : controller.signal.aborted ? `nothing received for ${this.#timeoutMs} ms` : axios.isAxiosError(error) ? (error.code ?? error.message) : describeError(error);
      throw new OutpostError(ErrorCode.UPDATE_DOWNLOAD, `Cannot reach the release feed: GET ${url} failed after ${received} bytes (${why}).`, { cause: error });
    } finally {
      clearTimeout(stall);
      signal.removeEventListener('abort', abort);
    }
  }

  /**
   * The body of a GET of `url`, or of the byte range asked for: a 206 from the range's start (one that
   * ends early comes cut off), or a 200 from a host that ignores ranges (whose bytes before the range
   * `frames` then drop).
   */
  async #get(url: string, range: { start: number; end: number } | undefined, signal: AbortSignal): Promise<{ body: AsyncIterable<Buffer> & Readable; frames: FrameSplitter }> {
    const response = await this.#http.get<Readable>(url, { responseType: 'stream', headers: range ? { Range: `bytes=${range.start}-${range.end}` } : {}, signal, validateStatus: () => true, decompress: false });
    const body = response.data;
    const partial = range !== undefined && response.status === 206 && String(response.headers['content-range']).startsWith(`bytes ${range.start}-`);
    if (response.status !== 200 && !partial) {
      body.destroy();
      throw httpFailure(url, response.status);
    }
    return { body, frames: new FrameSplitter(range && response.status === 200 ? range.start : 0) };
  }
}

/** An answer other than the object: a 404 means the release is incomplete on the server (not worth retrying). */
function httpFailure(url: string, status: number, cause?: unknown): OutpostError {
  const why = status === 404 ? 'the feed does not have it (HTTP 404): the release is incomplete on the server' : `HTTP ${status}`;
  return new OutpostError(ErrorCode.UPDATE_DOWNLOAD, `Download of ${url} failed: ${why}.`, cause === undefined ? undefined : { cause });
}

/** A chunk whose frame came and verified: its raw bytes. */
export interface VerifiedChunk extends ChunkNeed {
  readonly raw: Buffer;
}

/** Decompresses one frame to at most the raw length allowed and checks the SHA-256 the verified parent names. */
function openFrame(what: string, stored: Buffer, expected: ObjectExpectation): Buffer {
  let raw: Buffer;
  try {
    // One output buffer of the expected size: no growing in steps.
    raw = zstdDecompressSync(stored, { maxOutputLength: expected.size ?? expected.maxRaw, chunkSize: Math.max(64, expected.size ?? 16 * 1024) });
  } catch (error) {
    throw new ObjectRefused(`the ${what} does not decompress to at most ${expected.size ?? expected.maxRaw} bytes (${describeError(error)})`);
  }
  if (expected.size !== undefined && raw.length !== expected.size) throw new ObjectRefused(`the ${what} is ${raw.length} bytes, not its signed ${expected.size}`);
  if (hash('sha256', raw) !== expected.sha256) throw new ObjectRefused(`the ${what} does not match its signed SHA-256 (tampered, or corrupted on the way)`);
  return raw;
}

/** An object whose bytes are wrong: refused (ERR_UPDATE_VERIFY); fetching it again may help if the damage was on the way. */
export class ObjectRefused extends OutpostError {
  constructor(what: string) {
    super(ErrorCode.UPDATE_VERIFY, `Update refused: ${what}.`);
  }
}
