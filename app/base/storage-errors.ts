import fs from 'node:fs';
import path from 'node:path';
import { describeFsError, ErrorCode, errnoCode, OutpostError } from './errors.js';

/**
 * ERR_STORAGE_CREATE (exit 73) for a storage folder that `mkdir` could not create: names the path
 * that is in the way (the nearest part that exists) and why, in words. A recursive mkdir reports
 * only the path asked for, and on a read-only mount says ENOENT, so the reason is asked of that part.
 */
export function cannotCreateStorage(dir: string, error: unknown): OutpostError {
  const existing = nearestExisting(dir);
  let blocker = describeFsError(error);
  if (existing?.isFile) blocker = `${existing.path} is a file, not a folder`;
  else if (existing) blocker = `${existing.path} cannot be written: ${writeProblem(existing.path) ?? blocker}`;
  return new OutpostError(ErrorCode.STORAGE_CREATE, `Cannot create the storage folder ${dir}: ${blocker}. Set OUTPOST_HOME to a folder this user can write.`, {
    cause: error,
    details: { dir, errno: errnoCode(error) },
  });
}

/** The deepest part of `dir` that exists (itself included), and whether it is a file; null if none does. */
function nearestExisting(dir: string): { path: string; isFile: boolean } | null {
  for (let current = dir; ; current = path.dirname(current)) {
    try {
      return { path: current, isFile: !fs.statSync(current).isDirectory() };
    } catch {
      if (path.dirname(current) === current) return null;
    }
  }
}

/** Why this user cannot create entries in `dir` (`permission denied (EACCES)`...), or null if it can. */
function writeProblem(dir: string): string | null {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return null;
  } catch (error) {
    return describeFsError(error);
  }
}
