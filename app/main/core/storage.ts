import path from 'node:path';
import { type StoragePaths, storagePaths } from '../../base/storage-layout.js';
import type { Platform, StorageSecurity } from '../platform/index.js';

export interface StorageLocation {
  readonly root: string;
  /** Why this folder: the OUTPOST_HOME override or the default for this privilege level. */
  readonly source: 'OUTPOST_HOME' | 'per-machine default' | 'per-user default';
}

/**
 * Per machine when elevated, per user otherwise (DESIGN.md), unless OUTPOST_HOME says where. A
 * relative OUTPOST_HOME is taken from the current folder, so that the log shows where it really is.
 */
export function locateStorage(platform: Platform, env: NodeJS.ProcessEnv, elevated: boolean): StorageLocation {
  const override = env.OUTPOST_HOME;
  if (override) return { root: path.resolve(override), source: 'OUTPOST_HOME' };
  return {
    root: platform.defaultStorageDir(elevated),
    source: elevated ? 'per-machine default' : 'per-user default',
  };
}

/** Creates the folder with strict permissions (or refuses an unsafe one) and returns its paths. */
export function prepareStorage(platform: Platform, location: StorageLocation, elevated: boolean): { paths: StoragePaths; security: StorageSecurity } {
  const security = platform.secureDirectory(location.root, elevated);
  return { paths: storagePaths(location.root), security };
}
