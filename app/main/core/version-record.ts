import type { Logger } from '../../base/logger.js';
import { writeConfig } from './config.js';
import type { Config } from './config-schema.js';

/**
 * Records the running version as config `current_version` (CONTRACT.md), so that an admin and the
 * next start see which version ran last. Only the lock holder writes config: call it after the lock.
 */
export function recordVersion(configFile: string, config: Config, version: string, log: Logger): Config {
  const previous = config.current_version;
  if (previous === version) {
    log.info(`current_version ${version}`);
    return config;
  }
  const updated = { ...config, current_version: version };
  writeConfig(configFile, updated);
  log.info(previous === null ? `current_version recorded: ${version}` : `current_version ${previous} -> ${version}`);
  return updated;
}
