import fs from 'node:fs';
import type { Readable } from 'node:stream';
import axios, { type AxiosInstance } from 'axios';
import { describeError, ErrorCode, OutpostError } from '../../../base/errors.js';
import { TargetHashes } from './target-hashes.js';

export interface DownloadRequest {
  readonly url: string;
  /** Where the verified file goes; `<file>.part` holds the bytes while they arrive. */
  readonly file: string;
  /** From the signed metadata: the download may not be one byte longer (endless data). */
  readonly length: number;
  /** From the signed metadata: algorithm -> hex; every known one listed is checked (see TargetHashes). */
  readonly hashes: Readonly<Record<string, string>>;
  /** No byte for this long: the transfer is abandoned (slow retrieval) and resumed next time. */
  readonly stallMs: number;
  readonly onBytes?: (bytes: number) => void;
  /** Shutdown: abandon the transfer (its part is kept for the next start). */
  readonly signal?: AbortSignal;
}

export interface DownloadResult {
  /** Bytes that came over the network this time (less than `length` when a transfer was resumed). */
  readonly transferred: number;
  readonly resumedFrom: number;
}

/**
 * Downloads one target to `file`, verified: the length may not exceed the signed length, and every
 * hash the metadata lists is computed while the bytes stream in (no second read; the bytes of a
 * resumed transfer's `.part` go through the same hashes first). A transfer that breaks off keeps its
 * `.part` file, and the next attempt asks only for the rest (HTTP Range); a part whose bytes cannot be
 * right (too long, wrong hash) is deleted. The file appears under its final name only when verified.
 */
export async function downloadVerified(http: AxiosInstance, request: DownloadRequest): Promise<DownloadResult> {
  const { url, file, length } = request;
  const part = `${file}.part`;
  const hash = TargetHashes.for(url, request.hashes);
  let have = await hashExisting(part, hash, length);
  const resumedFrom = have;
  let transferred = 0;
  if (have < length) {
    const controller = new AbortController();
    request.signal?.addEventListener('abort', () => controller.abort(), { once: true });
    const response = await http
      .get<Readable>(url, {
        responseType: 'stream',
        signal: controller.signal,
        headers: have > 0 ? { Range: `bytes=${have}-` } : {},
        // The body is checked against the signed length below, as it streams.
        maxContentLength: -1,
        validateStatus: () => true,
        // Until the headers arrive; the body has its own stall timer below, which must fire first.
        timeout: 2 * request.stallMs,
      })
      .catch((error: unknown) => {
        throw downloadError(url, `the request failed (${axios.isAxiosError(error) ? error.message : describeError(error)})`, error);
      });
    if (response.status === 200 && have > 0) {
      // The server ignored the Range: start again from the first byte.
      return downloadAfresh(http, request, part);
    }
    if (response.status !== 200 && response.status !== 206) {
      response.data.destroy();
      throw downloadError(url, `HTTP ${response.status}`, null);
    }
    const out = fs.openSync(part, have > 0 ? 'a' : 'w', 0o600);
    try {
      await new Promise<void>((resolve, reject) => {
        // The first reason wins: aborting the request makes the stream emit an error of its own.
        let settled = false;
        const fail = (error: OutpostError) => {
          clearTimeout(stall);
          if (settled) return;
          settled = true;
          reject(error);
          controller.abort();
        };
        const onStall = () => fail(downloadError(url, `no data for ${request.stallMs} ms (stalled at ${have} of ${length} bytes); it will resume from there`, null));
        let stall = setTimeout(onStall, request.stallMs);
        response.data.on('data', (chunk: Buffer) => {
          if (settled) return;
          clearTimeout(stall);
          if (have + chunk.length > length) {
            fail(new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: ${url} sent more than its signed length of ${length} bytes.`));
            return;
          }
          fs.writeSync(out, chunk);
          hash.update(chunk);
          have += chunk.length;
          transferred += chunk.length;
          request.onBytes?.(have);
          stall = setTimeout(onStall, request.stallMs);
        });
        response.data.on('end', () => {
          clearTimeout(stall);
          if (settled) return;
          settled = true;
          resolve();
        });
        response.data.on('error', (error) => {
          fail(downloadError(url, `the connection broke at ${have} of ${length} bytes (${describeError(error)}); it will resume from there`, error));
        });
      });
      fs.fsyncSync(out);
    } catch (error) {
      if (error instanceof OutpostError && error.code === ErrorCode.UPDATE_VERIFY) fs.rmSync(part, { force: true });
      throw error;
    } finally {
      fs.closeSync(out);
    }
  }
  if (have !== length) throw downloadError(url, `the transfer ended at ${have} of ${length} bytes; it will resume from there`, null);
  try {
    hash.verify();
  } catch (error) {
    fs.rmSync(part, { force: true });
    throw error;
  }
  fs.renameSync(part, file);
  return { transferred, resumedFrom };
}

async function downloadAfresh(http: AxiosInstance, request: DownloadRequest, part: string): Promise<DownloadResult> {
  fs.rmSync(part, { force: true });
  return downloadVerified(http, request);
}

/** Feeds the bytes of an earlier, interrupted transfer to the hashes; returns how many there are. */
async function hashExisting(part: string, hash: TargetHashes, length: number): Promise<number> {
  let size: number;
  try {
    size = fs.statSync(part).size;
  } catch {
    return 0;
  }
  if (size > length) {
    fs.rmSync(part, { force: true });
    return 0;
  }
  for await (const chunk of fs.createReadStream(part)) hash.update(chunk as Buffer);
  return size;
}

function downloadError(url: string, what: string, cause: unknown): OutpostError {
  return new OutpostError(ErrorCode.UPDATE_DOWNLOAD, `Download of ${url} failed: ${what}.`, { cause });
}
