import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, OutpostError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';
import type { ChunkStore } from './chunk-store.js';
import { type FeedObjects, ObjectRefused } from './feed-objects.js';

export interface ChunkNeed {
  readonly sha256: string;
  readonly size: number;
}

export interface ChunkDownloadRequest {
  readonly objects: FeedObjects;
  readonly chunks: readonly ChunkNeed[];
  /** Where each verified chunk goes, so that nothing verified is fetched twice, even after a crash. */
  readonly store: ChunkStore;
  /** How many requests are in flight at once (over kept-alive connections). */
  readonly parallel: number;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** After each verified chunk: its raw size. */
  readonly onChunk?: (size: number) => void;
}

/** A chunk whose bytes came wrong, or did not come, is asked for this many times in all before the check fails. */
const ATTEMPTS = 3;

/**
 * Downloads chunks into the chunk store, `parallel` at a time, each verified as it arrives
 * (FeedObjects: length, decompressed size, SHA-256) and stored only then. A chunk
 * that fails (cut off, wrong bytes, a dropped connection) is fetched again, up to ATTEMPTS times; a
 * chunk the feed does not have, or the agent shutting down, stops everything at once. What was
 * verified stays in the store: the next attempt starts where this one stopped.
 */
export async function downloadChunks(request: ChunkDownloadRequest): Promise<void> {
  const { chunks, store, objects, signal } = request;
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < chunks.length) {
      const chunk = chunks[next++] as ChunkNeed;
      try {
        await fetchOne(request, chunk);
        request.onChunk?.(chunk.size);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(request.parallel, chunks.length) }, worker));
  } finally {
    store.close();
  }
  if (failure !== undefined) throw failure;
  if (signal.aborted) throw new OutpostError(ErrorCode.UPDATE_DOWNLOAD, 'The download stopped: the agent is shutting down (it resumes at the next start).');

  async function fetchOne(req: ChunkDownloadRequest, chunk: ChunkNeed): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const raw = await objects.fetch('chunks', { sha256: chunk.sha256, size: chunk.size, maxRaw: chunk.size }, signal);
        store.append(chunk.sha256, raw);
        return;
      } catch (error) {
        const retry = attempt < ATTEMPTS && !signal.aborted && isTransient(error);
        if (!retry) throw error;
        req.log.warn(`chunk ${chunk.sha256.slice(0, 12)} failed (attempt ${attempt} of ${ATTEMPTS}), fetching it again: ${(error as Error).message}`);
        await sleep(200 * attempt);
      }
    }
  }
}

/** Wrong bytes may have been damaged on the way, and a dropped connection may come back; a 404 will not. */
function isTransient(error: unknown): boolean {
  if (error instanceof ObjectRefused) return true;
  return error instanceof OutpostError && error.code === ErrorCode.UPDATE_DOWNLOAD && !/HTTP 4\d\d/.test(error.message);
}
