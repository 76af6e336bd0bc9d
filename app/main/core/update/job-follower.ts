import fs from 'node:fs';
import { describeError, describeFsError, errnoCode } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';
import { journalJobId } from '../../../base/storage-layout.js';
import { jobOwner, jobPaths, readJob, readJournal } from '../../../base/update-records.js';
import { EventCode, type ReportCode } from '../../../common/codes.js';
import type { UpdaterJob } from '../../../common/update-files.js';
import type { Platform } from '../../platform/index.js';
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
  /** Runs `tick` every `ms` until the returned function is called; a real timer unless a test drives the ticks itself. */
  readonly every?: (ms: number, tick: () => void) => () => void;
}

function everyInterval(ms: number, tick: () => void): () => void {
  const timer = setInterval(tick, ms);
  timer.unref();
  return () => clearInterval(timer);
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
  #cancel: (() => void) | undefined;
  #recoveryStarted = false;
  /** Set while ticks fail: the failure is logged when it begins, not at every tick. */
  #failing = false;

  constructor(options: JobFollowerOptions) {
    this.#options = options;
  }

  start(): void {
    this.#cancel = (this.#options.every ?? everyInterval)(this.#intervalMs, () => this.#tick());
    this.#tick();
  }

  dispose(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }

  /**
   * A tick that fails (its folder removed, unreadable) is tried again at the next one: thrown from a
   * timer, it would end the agent.
   */
  #tick(): void {
    try {
      this.#follow();
      if (this.#failing) this.#options.log.info(`following update job ${this.#options.job.job_id} works again`);
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) {
        this.#options.log.warn(`cannot follow update job ${this.#options.job.job_id} (trying again every ${this.#intervalMs} ms): ${describeFsError(error)}`);
      }
      this.#failing = true;
    }
  }

  get #intervalMs(): number {
    return this.#options.intervalMs ?? 500;
  }

  #follow(): void {
    const { job, platform, log } = this.#options;
    const journal = readJournal(jobPaths(job).journal(job.job_id));
    const outcome = journal.outcome?.outcome ?? null;
    const owner = jobOwner(job, platform);
    if (outcome === null && owner === null && journal.steps.length === 0) {
      // Its updater never began (the hand-off failed): nothing to finish, only to remove.
      this.#finish(false);
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
    this.#finish(outcome === 'committed' && job.new_version === this.#options.version);
  }

  /**
   * Stops following, reports the success if `succeeded`, and removes what the job left. What to
   * remove is listed first: a folder that cannot be read throws before anything is done, and the
   * next tick tries again (the success is reported once).
   */
  #finish(succeeded: boolean): void {
    const { job, log } = this.#options;
    const leftovers = this.#leftovers();
    this.dispose();
    if (succeeded) {
      log.info(`update ${job.old_version} -> ${job.new_version} committed; reporting it`);
      void this.#options.report(EventCode.UPDATE_SUCCEEDED, `Updated from ${job.old_version} to ${job.new_version}.`, {
        from_version: job.old_version,
        to_version: job.new_version,
        job_id: job.job_id,
      });
    }
    for (const leftover of leftovers) {
      try {
        fs.rmSync(leftover, { recursive: true, force: true });
      } catch (error) {
        log.warn(`could not remove ${leftover} (tried again at the next start): ${describeError(error)}`);
      }
    }
  }

  /**
   * Journals of earlier jobs go too: this one's is the record kept (and a newer job's, should this
   * agent have handed over again meanwhile, is left alone). job.json last, and only if it is still
   * this job's: while it exists, a later start finishes this one.
   */
  #leftovers(): string[] {
    const { job } = this.#options;
    const files = jobPaths(job);
    const current = readJob(files);
    const keep = new Set([job.job_id, current?.job_id]);
    const earlier = namesIn(files.dir)
      .map(journalJobId)
      .filter((id): id is string => id !== null && !keep.has(id));
    const id = job.job_id;
    return [files.updaterCopy(id), files.readyFile(id), files.healthRecord(id), ...earlier.map(files.journal), ...(current?.job_id === id ? [files.job] : [])];
  }
}

/** The names in a folder; none when it is gone (removed with everything that was to be removed). */
function namesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
}
