import fs from 'node:fs';
import type { UpdaterJob } from '../../../common/update-files.js';
import type { Platform } from '../../platform/index.js';
import { describeError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';
import { journalJobId } from '../../../base/storage-layout.js';
import { jobOwner, jobPaths, outcomeOf, readJob, readJournal } from '../../../base/update-records.js';
import { EventCode, type ReportCode } from '../../../common/codes.js';
import { startRecovery, type UpdaterProgram } from './handoff.js';

export interface JobFollowerOptions {
  readonly job: UpdaterJob;
  /** The version this agent runs. */
  readonly version: string;
  readonly platform: Platform;
  readonly log: Logger;
  /** This installation's updater: started in recovery mode if the job's updater dies before the end. */
  readonly updater: UpdaterProgram | undefined;
  readonly report: (code: ReportCode, message: string, context: Record<string, string>) => Promise<void>;
  readonly intervalMs?: number;
}

/**
 * Run by every agent that finds an update job (`updates/job.json`) at start: the new version that the
 * updater started to prove itself, the old one that a rollback started again, or any later start.
 * Follows the job until it has ended and its updater has exited, then:
 * - reports the success to the backend (EVT_UPDATE_SUCCEEDED), when the job was committed and this
 *   agent is its new version;
 * - removes what the job needed while it ran: the updater's copy of itself (an executable cannot
 *   delete itself on Windows), the ready file, the health record, earlier jobs' journals and job.json.
 *   This job's journal and `last-update.json` stay, as the record of what happened.
 * If the updater dies before the job has ended (a crash after this agent started), it hands the job
 * to the updater's recovery, which finishes it (a new version that proved itself is kept).
 */
export class JobFollower {
  readonly #options: JobFollowerOptions;
  #timer: NodeJS.Timeout | undefined;
  #recoveryStarted = false;

  constructor(options: JobFollowerOptions) {
    this.#options = options;
  }

  start(): void {
    this.#timer = setInterval(() => this.#tick(), this.#options.intervalMs ?? 500);
    this.#timer.unref();
    this.#tick();
  }

  dispose(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const { job, platform, log } = this.#options;
    const outcome = outcomeOf(job);
    const owner = jobOwner(job, platform);
    if (outcome === null && owner === null && readJournal(jobPaths(job).journal(job.job_id)).steps.length === 0) {
      // Its updater never began (the hand-off failed): nothing to finish, only to remove.
      this.#cleanUp();
      return;
    }
    if (outcome === null) {
      if (owner === null && !this.#recoveryStarted && this.#options.updater) {
        this.#recoveryStarted = true;
        const pid = startRecovery(this.#options.updater, job);
        log.warn(`the updater of ${job.job_id} ended before the job did; its recovery (pid ${pid}) finishes it`);
      }
      return;
    }
    if (owner !== null) return; // the updater is on its way out
    if (outcome === 'committed' && job.new_version === this.#options.version) {
      log.info(`update ${job.old_version} -> ${job.new_version} committed; reporting it`);
      void this.#options.report(EventCode.UPDATE_SUCCEEDED, `Updated from ${job.old_version} to ${job.new_version}.`, {
        from_version: job.old_version,
        to_version: job.new_version,
        job_id: job.job_id,
      });
    }
    this.#cleanUp();
  }

  #cleanUp(): void {
    const { job, log } = this.#options;
    this.dispose();
    // Journals of earlier jobs go too: this one's is the record kept (and a newer job's, should this
    // agent have handed over again meanwhile, is left alone). job.json last, and only if it is still
    // this job's: while it exists, a later start finishes this one.
    const files = jobPaths(job);
    const current = readJob(files);
    const keep = new Set([job.job_id, current?.job_id]);
    const earlier = fs
      .readdirSync(files.dir)
      .map(journalJobId)
      .filter((id): id is string => id !== null && !keep.has(id));
    const stillThisJob = current?.job_id === job.job_id;
    const id = job.job_id;
    for (const leftover of [files.updaterCopy(id), files.readyFile(id), files.healthRecord(id), ...earlier.map(files.journal), ...(stillThisJob ? [files.job] : [])]) {
      try {
        fs.rmSync(leftover, { recursive: true, force: true });
      } catch (error) {
        log.warn(`could not remove ${leftover} (tried again at the next start): ${describeError(error)}`);
      }
    }
  }
}
