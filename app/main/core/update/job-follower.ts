import fs from 'node:fs';
import type { UpdaterJob } from '../../../common/updater-job.js';
import type { Platform } from '../../platform/index.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import { startRecovery, type UpdaterProgram, updaterCopyDir } from './handoff.js';
import { healthRecordFile, jobOwner, outcomeOf } from './job-journal.js';

export interface JobFollowerOptions {
  readonly job: UpdaterJob;
  readonly jobFile: string;
  readonly platform: Platform;
  readonly log: Logger;
  /** This installation's updater: started in recovery mode if the job's updater dies before the end. */
  readonly updater: UpdaterProgram | undefined;
  readonly report: (code: string, message: string, context: Record<string, string>) => Promise<void>;
  readonly intervalMs?: number;
}

/**
 * Run by the new version that an updater started, once it is IDLE and has written its health record:
 * follows the job until it ends. If the job is committed, it reports the success to the backend. Once
 * the updater has exited, it removes the updater's copy of itself (an executable cannot delete itself
 * on Windows) and the job's ready file and health record. If the updater dies before the end (a crash after this version proved itself healthy),
 * it hands the job to the updater's recovery, which commits it from the health record.
 */
export class JobFollower {
  readonly #options: JobFollowerOptions;
  #timer: NodeJS.Timeout | undefined;
  #outcome: string | null = null;
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
    if (this.#outcome === null) {
      this.#outcome = outcomeOf(job);
      if (this.#outcome === 'committed') {
        log.info(`update ${job.old_version} -> ${job.new_version} committed; reporting it`);
        void this.#options.report('EVT_UPDATE_SUCCEEDED', `Updated from ${job.old_version} to ${job.new_version}.`, {
          from_version: job.old_version,
          to_version: job.new_version,
          job_id: job.job_id,
        });
      }
    }
    const owner = jobOwner(job, platform);
    if (this.#outcome === null) {
      if (owner === null && !this.#recoveryStarted && this.#options.updater) {
        this.#recoveryStarted = true;
        const pid = startRecovery(this.#options.updater, job, this.#options.jobFile);
        log.warn(`the updater of ${job.job_id} ended before the job did; its recovery (pid ${pid}) finishes it`);
      }
      return;
    }
    if (owner !== null) return; // the updater is still on its way out
    this.dispose();
    // What the job needed while it ran; its journal, job.json and last-update.json stay as its record.
    for (const leftover of [updaterCopyDir(job), job.ready_file, healthRecordFile(job)]) {
      try {
        fs.rmSync(leftover, { recursive: true, force: true });
      } catch (error) {
        log.warn(`could not remove ${leftover}: ${describeError(error)}`);
      }
    }
  }
}
