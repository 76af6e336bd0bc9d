import fs from 'node:fs';
import path from 'node:path';
import type { Platform, StorageSecurity } from '../platform/index.js';
import { describeFsError, ErrorCode, errnoCode, OutpostError } from './errors.js';

/** The files of the storage folder (CONTRACT.md). */
export interface StoragePaths {
  readonly root: string;
  readonly config: string;
  readonly logs: string;
  readonly lock: string;
  readonly errorReports: string;
  readonly updates: string;
  readonly agentId: string;
}

export function storagePaths(root: string): StoragePaths {
  return {
    root,
    config: path.join(root, 'config.json'),
    logs: path.join(root, 'logs'),
    lock: path.join(root, 'agent.lock'),
    errorReports: path.join(root, 'error_reports.jsonl'),
    updates: path.join(root, 'updates'),
    agentId: path.join(root, 'agent_id'),
  };
}

export interface StorageLocation {
  readonly root: string;
  /** Why this folder: the OUTPOST_HOME override or the default for this privilege level. */
  readonly source: 'OUTPOST_HOME' | 'OUTPOST_HOME, relative to the working folder' | 'per-machine default' | 'per-user default';
}

/**
 * Per machine when elevated, per user otherwise (DESIGN.md), unless OUTPOST_HOME says where. A
 * relative OUTPOST_HOME is taken from the current folder, and the source says so, so that the log
 * shows where it really is. An OUTPOST_HOME that is set but empty (or blank) is refused (exit 78):
 * taking it as unset would run on the machine's real storage folder, which whoever set it, a script
 * whose variable came out empty, meant not to touch.
 */
export function locateStorage(platform: Platform, env: NodeJS.ProcessEnv, elevated: boolean): StorageLocation {
  const override = env.OUTPOST_HOME;
  const fallback = platform.defaultStorageDir(elevated);
  if (override === undefined) return { root: fallback, source: elevated ? 'per-machine default' : 'per-user default' };
  if (override.trim() === '') {
    throw new OutpostError(
      ErrorCode.CONFIG_INVALID,
      `OUTPOST_HOME is set but ${override === '' ? 'empty' : 'blank'}; set it to the storage folder to use, or unset it to use the default (${fallback}).`,
    );
  }
  return { root: path.resolve(override), source: path.isAbsolute(override) ? 'OUTPOST_HOME' : 'OUTPOST_HOME, relative to the working folder' };
}

/** Creates the folder with strict permissions (or refuses an unsafe one) and returns its paths. */
export function prepareStorage(platform: Platform, location: StorageLocation, elevated: boolean): { paths: StoragePaths; security: StorageSecurity } {
  const security = platform.secureDirectory(location.root, elevated);
  return { paths: storagePaths(location.root), security };
}

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
