import path from 'node:path';
import { type StoragePaths, storagePaths } from '../../base/storage-layout.js';
import type { Platform, StorageSecurity } from '../platform/index.js';
import { ErrorCode, OutpostError } from '../../base/errors.js';

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

