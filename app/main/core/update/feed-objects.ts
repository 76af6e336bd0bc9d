import { hash } from 'node:crypto';
import { zstdDecompressSync } from 'node:zlib';
import type { AxiosInstance } from 'axios';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { describeError, ErrorCode, OutpostError } from '../../../base/errors.js';
import { maxStoredChunkBytes, type ObjectKind, objectPath } from '../../../common/release.js';
import { fetchBytes } from './fetch-bytes.js';

/** How errors name an object of each kind. */
const OBJECT_NAME: Readonly<Record<ObjectKind, string>> = { manifests: 'manifest', indexes: 'index', pages: 'page', chunks: 'chunk' };

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
      if (error instanceof DownloadHTTPError) {
        const why = error.statusCode === 404 ? 'the feed does not have it (HTTP 404): the release is incomplete on the server' : `HTTP ${error.statusCode}`;
        throw new OutpostError(ErrorCode.UPDATE_DOWNLOAD, `Download of ${url} failed: ${why}.`, { cause: error });
      }
      throw error;
    }
    this.#wireBytes += stored.length;
    if (expected.storedLength !== undefined && stored.length !== expected.storedLength) {
      throw new ObjectRefused(`the ${what} is ${stored.length} bytes, not its signed ${expected.storedLength} (truncated or replaced on the way)`);
    }
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
}

/** An object whose bytes are wrong: refused (ERR_UPDATE_VERIFY); fetching it again may help if the damage was on the way. */
export class ObjectRefused extends OutpostError {
  constructor(what: string) {
    super(ErrorCode.UPDATE_VERIFY, `Update refused: ${what}.`);
  }
}
