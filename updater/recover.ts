import fs from 'node:fs';
import { readText } from '../app/base/durable-file.js';
import { describeError } from '../app/base/errors.js';
import { readLiveRecord } from '../app/base/process-liveness.js';
import { storagePaths } from '../app/base/storage-layout.js';
import { liveHealthRecord, outcomeOf, ownerRecordText } from '../app/base/update-records.js';
import { ErrorCode } from '../app/common/codes.js';
import { LockRecord } from '../app/common/process-identity.js';
import { JobOwner, type JournalStep, type UpdateOutcome } from '../app/common/update-files.js';
import type { JobContext } from './context.js';
import { recordInstalledVersion } from './installed-entry.js';
import { moveDir } from './moves.js';
import { launchInstalled, stopProcess } from './processes.js';
import { failedInstallDir, finishJob, queueReport, recordFailure } from './records.js';

/**
 * Finishes or undoes a job that a crash interrupted (of the updater, or of the machine), from what
 * the journal says and what is on disk, so that exactly one complete version is installed and
 * running:
 * - the commit had begun, or the new version proved itself healthy (its health record, and it runs)
 *   while the health step had not failed: the new version stays; the cleanup is done, and Apps &
 *   features is told the new version (installed-entry.ts);
 * - otherwise the old version comes back: the new one is stopped if it runs, the backup is put back if
 *   it was made, the installed version is started, and the failure is reported.
 * Renames are atomic, so the installation folder is always one complete tree or missing, never mixed.
 */
export async function recoverJob(context: JobContext): Promise<UpdateOutcome> {
  const lock = context.files.recoveryLock(context.job.job_id);
  for (let attempt = 1; ; attempt++) {
    if (await takeLock(lock, context)) {
      try {
        return await recover(context);
      } finally {
        fs.rmSync(lock, { force: true });
      }
    }
    // Another recovery (started by an agent, or by hand) was at work: its outcome is ours, unless it
    // failed before recording one; then this one tries (the steps work from what is on disk).
    const outcome = outcomeOf(context.job);
    if (outcome) return outcome;
    if (attempt >= 3) throw new Error(`another recovery of job ${context.job.job_id} ended without an outcome, three times`);
    context.log.warn(`another recovery of job ${context.job.job_id} ended without an outcome; trying again`);
  }
}

async function recover(context: JobContext): Promise<UpdateOutcome> {
  const { job, log } = context;
  const { steps, outcome: done } = context.journal.read();
  if (done) {
    log.info(`job ${job.job_id} had already ended (${done.outcome}); nothing to recover`);
    return done.outcome;
  }
  const begun = (step: JournalStep) => steps.some((e) => e.step === step && e.phase === 'begin');
  const last = steps.at(-1);
  log.warn(`recovering job ${job.job_id} (${job.old_version} -> ${job.new_version}), interrupted at ${last ? `${last.step}:${last.phase}` : 'its start'}`);

  const healthFailed = steps.some((e) => e.step === 'health' && e.phase === 'fail');
  if (begun('commit') || (!healthFailed && liveHealthRecord(job, context.platform))) {
    fs.rmSync(job.backup_dir, { recursive: true, force: true });
    fs.rmSync(job.staged_dir, { recursive: true, force: true });
    recordInstalledVersion(context);
    // The outcome first: the agent that starts next must find the job ended.
    const outcome = finishJob(context, 'committed', 'finished by recovery');
    await ensureRunning(context);
    return outcome;
  }

  // Before the point of no return: back to the old version. The new version the updater launched is
  // stopped first, even if it does not answer yet (it would otherwise win the lock over the old one).
  const launchedPid = Number(steps.find((e) => e.step === 'launch' && e.phase === 'end')?.detail?.pid ?? 0);
  if (launchedPid > 0) await stopProcess(context, launchedPid);
  const running = runningAgent(context);
  if (running !== null && running.version === job.new_version) await stopProcess(context, running.pid);
  if (fs.existsSync(job.backup_dir)) {
    if (fs.existsSync(job.install_dir)) {
      // The swap had happened: the new tree goes back to where it came from (staged), the old one returns.
      fs.rmSync(job.staged_dir, { recursive: true, force: true });
      await moveDir(context, job.install_dir, job.staged_dir);
    }
    await moveDir(context, job.backup_dir, job.install_dir);
  }
  fs.rmSync(failedInstallDir(job), { recursive: true, force: true }); // a rollback's restore cut short
  let outcome: UpdateOutcome;
  if (!begun('backup')) {
    outcome = finishJob(context, 'aborted', `interrupted before anything changed (${last?.step ?? 'start'})`);
  } else {
    // A rollback that got as far as its report step has counted and reported the failure already.
    if (!steps.some((e) => e.step === 'report' && e.phase === 'end')) {
      recordFailure(context);
      queueReport(context, ErrorCode.UPDATE_INTERRUPTED, `The update to ${job.new_version} was interrupted at ${last?.step}:${last?.phase} and undone; ${job.old_version} runs.`, {
        interrupted_at: `${last?.step}:${last?.phase}`,
      });
    }
    outcome = finishJob(context, 'rolled_back', `interrupted at ${last?.step}:${last?.phase}`);
  }
  await ensureRunning(context);
  return outcome;
}

/** One recovery at a time per job; a lock whose owner died is taken over. Waits for a live owner (bounded). */
async function takeLock(lock: string, { platform, log }: JobContext): Promise<boolean> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.writeFileSync(lock, ownerRecordText(platform), { flag: 'wx', mode: 0o600 });
      return true;
    } catch {
      const owner = readLiveRecord(lock, platform, JobOwner)?.pid ?? null;
      if (owner === null) {
        // Created this instant and not yet written (its owner is between the create and the write)?
        const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0);
        if (age < 2_000 && readText(lock) === '') {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        fs.rmSync(lock, { force: true }); // its owner died
        continue;
      }
      if (Date.now() > deadline) throw new Error(`recovery pid ${owner} holds ${lock} for too long`);
      log.info(`another recovery (pid ${owner}) is at work; waiting for it`);
      while (fs.existsSync(lock) && platform.isProcessAlive(owner) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (!fs.existsSync(lock)) return false;
    }
  }
}

/** The agent that holds the lock of the job's storage, if one runs. */
function runningAgent({ job, platform }: JobContext): LockRecord | null {
  return readLiveRecord(storagePaths(job.storage).lock, platform, LockRecord);
}

/** Starts the installed version unless an agent already runs. */
async function ensureRunning(context: JobContext): Promise<void> {
  if (runningAgent(context) !== null) return;
  try {
    await launchInstalled(context.job, context.log);
  } catch (error) {
    context.log.error(`could not start the installed version: ${describeError(error)}`);
  }
}
