import path from 'node:path';
import type { Platform, StorageSecurity } from '../platform/index.js';

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
