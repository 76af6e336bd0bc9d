import fs from 'node:fs';
import type { UpdateOutcome } from '../app/common/updater-job.js';
import { AgentClient } from '../app/main/core/agent-client.js';
import { describeError } from '../app/main/core/errors.js';
import { readJournal } from './journal.js';
import { finishJob, type JobContext, launchInstalled, moveDir, queueReport, recordFailure } from './run-job.js';

/**
 * Finishes or undoes a job that a crash interrupted (of the updater, or of the machine), from what
 * the journal says and what is on disk, so that exactly one complete version is installed and
 * running:
 * - the commit had begun (the new version was healthy): the new version stays; the cleanup is done;
 * - otherwise the old version comes back: the new one is stopped if it runs, the backup is put back if
 *   it was made, the installed version is started, and the failure is reported.
 * Renames are atomic, so the installation folder is always one complete tree or missing, never mixed.
 */
export async function recoverJob(context: JobContext): Promise<UpdateOutcome> {
  const { job, log } = context;
  const entries = readJournal(job.journal);
  const done = entries.find((e) => e.step === 'outcome');
  if (done) {
    log.info(`job ${job.job_id} had already ended (${String(done.detail?.outcome)}); nothing to recover`);
    return (done.detail?.outcome as UpdateOutcome) ?? 'aborted';
  }
  const begun = (step: string) => entries.some((e) => e.step === step && e.phase === 'begin');
  const last = entries.at(-1);
  log.warn(`recovering job ${job.job_id} (${job.old_version} -> ${job.new_version}), interrupted at ${last ? `${last.step}:${last.phase}` : 'its start'}`);

  if (begun('commit')) {
    fs.rmSync(job.backup_dir, { recursive: true, force: true });
    fs.rmSync(job.staged_dir, { recursive: true, force: true });
    await ensureRunning(context);
    return finishJob(context, 'committed', 'finished by recovery');
  }

  // Before the point of no return: back to the old version.
  const running = await runningVersion(context);
  if (running !== null && running.version === job.new_version) {
    try {
      process.kill(running.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    for (let i = 0; i < 100 && context.platform.isProcessAlive(running.pid); i++) await new Promise((r) => setTimeout(r, 50));
    if (context.platform.isProcessAlive(running.pid)) process.kill(running.pid, 'SIGKILL');
  }
  if (fs.existsSync(job.backup_dir)) {
    if (fs.existsSync(job.install_dir)) {
      // The swap had happened: the new tree goes back to where it came from (staged), the old one returns.
      fs.rmSync(job.staged_dir, { recursive: true, force: true });
      await moveDir(context, job.install_dir, job.staged_dir);
    }
    await moveDir(context, job.backup_dir, job.install_dir);
  }
  const changed = begun('backup');
  await ensureRunning(context);
  if (!changed) return finishJob(context, 'aborted', `interrupted before anything changed (${last?.step ?? 'start'})`);
  recordFailure(context);
  queueReport(context, 'ERR_UPDATE_INTERRUPTED', `The update to ${job.new_version} was interrupted at ${last?.step}:${last?.phase} and undone; ${job.old_version} runs.`, {
    interrupted_at: `${last?.step}:${last?.phase}`,
  });
  return finishJob(context, 'rolled_back', `interrupted at ${last?.step}:${last?.phase}`);
}

async function runningVersion({ job, platform }: JobContext): Promise<{ version: string; pid: number } | null> {
  try {
    const reply = await new AgentClient(platform, { ...process.env, OUTPOST_HOME: job.storage }).send('status', 2_000);
    return reply.data ? { version: reply.data.version, pid: reply.data.pid } : null;
  } catch {
    return null;
  }
}

/** Starts the installed version unless an agent already answers. */
async function ensureRunning(context: JobContext): Promise<void> {
  if ((await runningVersion(context)) !== null) return;
  try {
    await launchInstalled(context.job, context.log);
  } catch (error) {
    context.log.error(`could not start the installed version: ${describeError(error)}`);
  }
}
