import { describeError } from '../app/base/errors.js';
import type { JobContext } from './context.js';

/**
 * Apps & features shows the new version (Platform.recordInstalledVersion: the Uninstall entries that
 * name the installation folder). Run once the new version is there to stay, before the job's outcome
 * is written: after the commit, and by a recovery that keeps the new version. Not a journal step: it
 * is idempotent, and a crash before it is done leaves the job without an outcome, whose recovery keeps
 * the new version and runs it again. Best effort: the update is committed whatever happens here; a
 * failure is logged with its reason. A rollback never comes here: the entry still names the old version.
 */
export function recordInstalledVersion({ job, platform, log }: Pick<JobContext, 'job' | 'platform' | 'log'>): void {
  let updates: ReturnType<typeof platform.recordInstalledVersion>;
  try {
    updates = platform.recordInstalledVersion(job.install_dir, job.new_version);
  } catch (error) {
    // The platform reports failures in its results; whatever else goes wrong must not cost the outcome.
    log.warn(`Apps & features: cannot show ${job.new_version} for ${job.install_dir} (the update stays committed): ${describeError(error)}`);
    return;
  }
  if (updates === null) return; // no such list on this OS
  if (updates.length === 0) log.debug(`Apps & features: no entry names ${job.install_dir} (a portable or development installation): nothing to update`);
  for (const { key, from, to, error } of updates) {
    if (error) log.warn(`Apps & features: ${error.message} (the update stays committed)`, { code: error.code });
    else if (from === to) log.info(`Apps & features: ${key} DisplayVersion already ${to}`);
    else log.info(`Apps & features: ${key} DisplayVersion ${from ?? '(none)'} -> ${to}`);
  }
}
