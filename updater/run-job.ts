import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { describeError } from '../app/base/errors.js';
import { ErrorCode } from '../app/common/codes.js';
import type { JournalStep, UpdateOutcome } from '../app/common/update-files.js';
import type { JobContext } from './context.js';
import { moveDir } from './moves.js';
import { recordInstalledVersion } from './installed-entry.js';
import { launchInstalled, stopProcess, waitForExit, waitForHealth } from './processes.js';
import { codeFor, failedInstallDir, finishJob, queueReport, recordFailure } from './records.js';

/**
 * The job, step by step (the steps are listed in common/update-files.ts): each step is journaled
 * before it is taken and after it is done, so that a crash at any point is finished or undone by
 * whoever runs next (recover.ts).
 */

class StepFailed extends Error {
  constructor(
    readonly step: JournalStep,
    message: string,
  ) {
    super(message);
  }
}

/** Runs a job from the start. Returns how it ended. */
export async function runJob(context: JobContext): Promise<UpdateOutcome> {
  const { job, log } = context;
  let launched: ChildProcess | undefined;
  const step = async <T>(name: JournalStep, work: () => Promise<T> | T, detail?: (result: T) => Record<string, number>): Promise<T> => {
    context.journal.step(name, 'begin');
    try {
      const result = await work();
      context.journal.step(name, 'end', detail?.(result));
      return result;
    } catch (error) {
      const message = error instanceof StepFailed ? error.message : describeError(error);
      context.journal.step(name, 'fail', { message });
      log.error(`step ${name} failed: ${message}`);
      throw new StepFailed(name, message);
    }
  };

  try {
    await step('wait_old_exit', () => waitForExit(context));
  } catch (error) {
    // Nothing was touched: the old agent is still there, running the installed version.
    queueReport(context, ErrorCode.UPDATE_OLD_AGENT_STAYED, `The update to ${job.new_version} was abandoned: ${(error as Error).message}`);
    return finishJob(context, 'aborted', (error as Error).message);
  }

  try {
    await step('backup', () => moveDir(context, job.install_dir, job.backup_dir));
    await step('swap', () => moveDir(context, job.staged_dir, job.install_dir));
    // The pid goes into the journal: a recovery must be able to stop this process even before it answers.
    launched = await step('launch', () => launchInstalled(job, log), (child) => ({ pid: child.pid ?? 0 }));
    await step('health', () => waitForHealth(context, launched as ChildProcess));
  } catch (error) {
    const failed = error as StepFailed;
    await rollBack(context, launched, failed);
    return finishJob(context, 'rolled_back', failed.message);
  }

  // POINT OF NO RETURN: the new version is installed, running and healthy. From here on the job only
  // cleans up and tells Windows' Apps & features the new version; a crash now leaves the new version
  // in place, and recovery finishes both.
  await step('commit', () => {
    fs.rmSync(job.backup_dir, { recursive: true, force: true });
    fs.rmSync(job.staged_dir, { recursive: true, force: true });
  });
  log.info(`update ${job.old_version} -> ${job.new_version} committed`);
  recordInstalledVersion(context);
  return finishJob(context, 'committed', null);
}

/** Stop the new version, put the old one back, start it, and tell the backend (through the agent). */
async function rollBack(context: JobContext, launched: ChildProcess | undefined, failure: StepFailed): Promise<void> {
  const { job, journal, log } = context;
  log.warn(`rolling back to ${job.old_version}: ${failure.step} failed`);
  const step = async (name: JournalStep, work: () => Promise<void> | void) => {
    journal.step(name, 'begin');
    try {
      await work();
      journal.step(name, 'end');
    } catch (error) {
      // Each rollback step is tried even when one fails: the old version running is what matters.
      journal.step(name, 'fail', { message: describeError(error) });
      log.error(`rollback step ${name} failed: ${describeError(error)}`);
    }
  };
  await step('stop_new', () => stopNew(context, launched));
  await step('restore', () => restore(context));
  // The report is queued before the old version starts: its reporter reads (and rewrites) the buffer.
  await step('report', () => {
    recordFailure(context);
    queueReport(context, codeFor(failure.step), `The update to ${job.new_version} was rolled back: ${failure.step} failed: ${failure.message}`, { failed_step: failure.step });
  });
  await step('relaunch_old', async () => {
    await launchInstalled(job, log);
  });
}

async function stopNew(context: JobContext, launched: ChildProcess | undefined): Promise<void> {
  if (launched?.pid !== undefined) await stopProcess(context, launched.pid);
}

/** Puts the backup back as the installation (whatever the failed swap left there is removed). */
async function restore(context: JobContext): Promise<void> {
  const { job } = context;
  if (!fs.existsSync(job.backup_dir)) return; // the backup step never happened: the installation is untouched
  if (fs.existsSync(job.install_dir)) {
    const failed = failedInstallDir(job);
    await moveDir(context, job.install_dir, failed);
    fs.rmSync(failed, { recursive: true, force: true });
  }
  await moveDir(context, job.backup_dir, job.install_dir);
}

