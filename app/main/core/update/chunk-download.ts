import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, OutpostError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';
import type { ChunkStore } from './chunk-store.js';
import { type FeedObjects, ObjectRefused } from './feed-objects.js';
import type { FrameRun } from './release-plan.js';

export interface ChunkDownloadRequest {
  readonly objects: FeedObjects;
  /** The chunks to fetch, as runs of consecutive frames (release-plan.ts). */
  readonly runs: readonly FrameRun[];
  /** Where each verified chunk goes, so that nothing verified is fetched twice, even after a crash. */
  readonly store: ChunkStore;
  /** How many requests are in flight at once (over kept-alive connections). */
  readonly parallel: number;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** After chunks have verified and been stored: their raw size. */
  readonly onChunks?: (size: number) => void;
}

/** A run whose first unverified chunk fails to come this many times in a row fails the check. */
const ATTEMPTS = 3;

/**
 * Downloads runs of chunks into the chunk store, `parallel` runs at a time, each chunk verified as
 * its frame arrives (FeedObjects.fetchRun: decompressed size, SHA-256) and stored only then. A run
 * that fails (cut off, wrong bytes, a dropped connection) is asked for again from its first chunk not
 * yet verified, until ATTEMPTS failures in a row; a file the feed does not have, or the agent shutting
 * down, stops everything at once. What was verified stays in the store: the next attempt starts where
 * this one stopped.
 */
export async function downloadChunks(request: ChunkDownloadRequest): Promise<void> {
  const { runs, store, signal } = request;
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < runs.length) {
      try {
        await fetchRun(request, runs[next++] as FrameRun);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(request.parallel, runs.length) }, worker));
  } finally {
    store.close();
  }
  if (failure !== undefined) throw failure;
  if (signal.aborted) throw new OutpostError(ErrorCode.UPDATE_DOWNLOAD, 'The download stopped: the agent is shutting down (it resumes at the next start).');
}

async function fetchRun(request: ChunkDownloadRequest, run: FrameRun): Promise<void> {
  const { objects, store, signal } = request;
  let rest = run;
  for (let failures = 1; ; failures++) {
    let verified = 0;
    try {
      await objects.fetchRun(rest, signal, (chunks) => {
        store.append(chunks);
        verified += chunks.length;
        request.onChunks?.(chunks.reduce((n, c) => n + c.size, 0));
      });
      return;
    } catch (error) {
      if (verified > 0) {
        // Progress: the rest of the run starts afresh, this failure its first.
        failures = 1;
        rest = remainder(rest, verified);
      }
      const retry = failures < ATTEMPTS && !signal.aborted && isTransient(error);
      if (!retry) throw error;
      request.log.warn(`the run from chunk ${rest.chunks[0].sha256.slice(0, 12)} failed (attempt ${failures} of ${ATTEMPTS}), asking again: ${(error as Error).message}`);
      await sleep(200 * Math.max(1, failures));
    }
  }
}

/** What is left of a run after its first `verified` chunks. */
function remainder(run: FrameRun, verified: number): FrameRun {
  if (run.start === undefined) return run;
  const done = run.chunks.slice(0, verified).reduce((n, c) => n + c.stored, 0);
  return { object: run.object, start: run.start + done, chunks: run.chunks.slice(verified) };
}

/** Wrong bytes may have been damaged on the way, and a dropped connection may come back; a 404 will not. */
function isTransient(error: unknown): boolean {
  if (error instanceof ObjectRefused) return true;
  return error instanceof OutpostError && error.code === ErrorCode.UPDATE_DOWNLOAD && !/HTTP 4\d\d/.test(error.message);
}
