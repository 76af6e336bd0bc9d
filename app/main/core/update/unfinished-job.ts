import { ErrorCode, OutpostError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';
import type { StoragePaths } from '../../../base/storage-layout.js';
import { jobOwner, readJob, readJournal } from '../../../base/update-records.js';
import type { UpdaterJob } from '../../../common/update-files.js';
import type { Platform } from '../../platform/index.js';
import { startRecovery, type UpdaterProgram } from './handoff.js';

export interface UnfinishedJob {
  /**
   * - `interrupted`: its updater is gone (a crash, a logoff, a power cut); the agent must not just
   *   run, it hands the job to the updater's recovery first;
   * - `in_progress`: the updater (or a recovery) is at work and started this agent, to prove itself.
   */
  readonly kind: 'interrupted' | 'in_progress';
  readonly job: UpdaterJob;
  /** The last journal entry, `step:phase`. */
  readonly at: string;
}

/** The job that has begun and not ended, seen by an agent that starts. */
function unfinishedJob(paths: StoragePaths, platform: Platform): UnfinishedJob | null {
  const job = readJob(paths.updates);
  if (!job) return null;
  const { steps, outcome } = readJournal(paths.updates.journal(job.job_id));
  const last = steps.at(-1);
  if (!last || outcome) return null;
  const kind = jobOwner(job, platform) === null ? 'interrupted' : 'in_progress';
  return { kind, job, at: `${last.step}:${last.phase}` };
}

/**
 * The update the updater is applying right now, while no agent runs (the old one has handed over, the
 * new one is not up yet), or null. `--quit` and `--force` refuse then, as a running agent refuses while
 * it updates: an installer that replaced the files now would race the updater's swap.
 */
export function updateBeingApplied(paths: StoragePaths, platform: Platform): UpdaterJob | null {
  const unfinished = unfinishedJob(paths, platform);
  return unfinished?.kind === 'in_progress' ? unfinished.job : null;
}

/**
 * What an agent that starts does about an unfinished job. Interrupted (its updater gone): it is
 * finished or undone by the updater before any agent runs, so this one starts the recovery and must
 * not run (ERR_UPDATE_RECOVERING, exit 3); the recovery starts the installed version when it is done.
 * In progress, with this version as the new one: returned, this agent is the version proving itself
 * (it writes the health record at IDLE). Anything else: null, run as usual.
 */
export function provingOrRecover(paths: StoragePaths, platform: Platform, version: string, updater: UpdaterProgram | undefined, log: Logger): UpdaterJob | null {
  const unfinished = unfinishedJob(paths, platform);
  if (!unfinished) return null;
  const { job, at } = unfinished;
  if (unfinished.kind === 'in_progress') return job.new_version === version ? job : null;
  if (!updater) {
    log.error(`an update (${job.old_version} -> ${job.new_version}) was interrupted at ${at}, and this agent has no updater to recover it`);
    return null;
  }
  const pid = startRecovery(updater, job);
  log.warn(`an update (${job.old_version} -> ${job.new_version}) was interrupted at ${at}; the updater (pid ${pid}) finishes or undoes it, then starts the installed version`);
  throw new OutpostError(
    ErrorCode.UPDATE_RECOVERING,
    `An interrupted update (${job.old_version} -> ${job.new_version}) is being recovered; the installed version starts when that is done.`,
  );
}
