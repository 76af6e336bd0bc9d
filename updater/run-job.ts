import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorReport } from '../app/common/reports.js';
import type { UpdateOutcome, UpdaterJob } from '../app/common/updater-job.js';
import { appendLineDurable, writeFileAtomic } from '../app/main/core/atomic-file.js';
import { describeError, errnoCode } from '../app/main/core/errors.js';
import { liveHealthRecord } from '../app/main/core/update/job-journal.js';
import type { Logger } from '../app/main/core/logger.js';
import type { HeldFile, Platform } from '../app/main/platform/index.js';
import type { Journal } from './journal.js';

/**
 * The updater's steps, in order. Each is written to the journal before it is taken and after it is
 * done; a crash at any point is finished or undone by whoever runs next (see recovery).
 */
export const FORWARD_STEPS = ['wait_old_exit', 'backup', 'swap', 'launch', 'health', 'commit'] as const;
/** Taken, in order, when a forward step fails before the point of no return. */
export const ROLLBACK_STEPS = ['stop_new', 'restore', 'report', 'relaunch_old'] as const;
export type Step = (typeof FORWARD_STEPS)[number] | (typeof ROLLBACK_STEPS)[number];

export interface JobContext {
  readonly job: UpdaterJob;
  readonly platform: Platform;
  readonly journal: Journal;
  readonly log: Logger;
  readonly now: () => Date;
  /** How long a file held open (antivirus, an Explorer window) may keep a rename from happening. */
  readonly heldFileRetryMs?: number;
}

class StepFailed extends Error {
  constructor(
    readonly step: Step,
    message: string,
  ) {
    super(message);
  }
}

/** Runs a job from the start. Returns how it ended. */
export async function runJob(context: JobContext): Promise<UpdateOutcome> {
  const { job, log } = context;
  let launched: ChildProcess | undefined;
  const step = async <T>(name: Step, work: () => Promise<T> | T, detail?: (result: T) => Record<string, number>): Promise<T> => {
    context.journal.append(name, 'begin');
    try {
      const result = await work();
      context.journal.append(name, 'end', detail?.(result));
      return result;
    } catch (error) {
      const message = error instanceof StepFailed ? error.message : describeError(error);
      context.journal.append(name, 'fail', { message });
      log.error(`step ${name} failed: ${message}`);
      throw new StepFailed(name, message);
    }
  };

  try {
    await step('wait_old_exit', () => waitForExit(context));
  } catch (error) {
    // Nothing was touched: the old agent is still there, running the installed version.
    queueReport(context, 'ERR_UPDATE_HANDOFF', `The update to ${job.new_version} was abandoned: ${(error as Error).message}`);
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
  // cleans up; a crash now leaves the new version in place, and recovery finishes the cleanup.
  await step('commit', () => {
    fs.rmSync(job.backup_dir, { recursive: true, force: true });
    fs.rmSync(job.staged_dir, { recursive: true, force: true });
  });
  log.info(`update ${job.old_version} -> ${job.new_version} committed`);
  return finishJob(context, 'committed', null);
}

/** Stop the new version, put the old one back, start it, and tell the backend (through the agent). */
async function rollBack(context: JobContext, launched: ChildProcess | undefined, failure: StepFailed): Promise<void> {
  const { job, journal, log } = context;
  log.warn(`rolling back to ${job.old_version}: ${failure.step} failed`);
  const step = async (name: Step, work: () => Promise<void> | void) => {
    journal.append(name, 'begin');
    try {
      await work();
      journal.append(name, 'end');
    } catch (error) {
      // Each rollback step is tried even when one fails: the old version running is what matters.
      journal.append(name, 'fail', { message: describeError(error) });
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

async function waitForExit({ job, platform }: JobContext): Promise<void> {
  const deadline = Date.now() + job.exit_timeout_ms;
  while (platform.isProcessAlive(job.old_pid)) {
    if (Date.now() > deadline) throw new Error(`the agent (pid ${job.old_pid}) did not exit within ${job.exit_timeout_ms} ms; the installed version was left as it is`);
    await sleep(50);
  }
}

/**
 * Renames `from` to `to` (one operation where the file system allows it); across file systems, copies
 * then removes. A file held open by another process (an antivirus scanner, an Explorer window, a stuck
 * old process) blocks the move on Windows: the platform finds such files before the rename is tried
 * (Wine, unlike Windows, would let the folder move anyway), and the move is retried with backoff for
 * a bounded time, then fails naming the files and, where the OS can tell, the processes holding them.
 */
export async function moveDir(context: JobContext, from: string, to: string): Promise<void> {
  const deadline = Date.now() + (context.heldFileRetryMs ?? 10_000);
  for (let wait = 50; ; wait = Math.min(wait * 2, 1_000)) {
    const held = context.platform.findHeldFiles(from);
    let failure: string | null = null;
    if (held.length === 0) {
      try {
        fs.renameSync(from, to);
        return;
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'EXDEV') {
          copyThenRemove(from, to);
          return;
        }
        if (!['EBUSY', 'EPERM', 'EACCES'].includes(code ?? '')) throw new Error(`cannot move ${from} to ${to}: ${code ?? describeError(error)}`);
        failure = `${code}: ${describeHeld(context.platform.findHeldFiles(from)) || 'no file in it is held open, so a folder is: a process working in it (a console window) or one that has it open'}`;
      }
    } else {
      failure = describeHeld(held);
    }
    if (Date.now() > deadline) throw new Error(`cannot move ${from} to ${to}: ${failure}`);
    context.log.warn(`${from} cannot move yet (${failure}); retrying in ${wait} ms`);
    await sleep(wait);
  }
}

/** "app.exe (held by Code.exe pid 4242)" for the log and the error report. */
function describeHeld(held: readonly HeldFile[]): string {
  return held
    .map((file) => {
      const holders = file.holders.map((h) => `${h.name} pid ${h.pid}`).join(', ');
      const unknown = file.unasked ? `Restart Manager could not be asked: ${file.unasked}` : 'Restart Manager named none';
      return `${file.path} is held open${holders ? ` by ${holders}` : ` (the holder is unknown: ${unknown})`}`;
    })
    .join('; ');
}

/** The move across file systems; a copy that fails half-way leaves `to` removed and `from` whole. */
function copyThenRemove(from: string, to: string): void {
  try {
    fs.cpSync(from, to, { recursive: true, errorOnExist: true, force: false, verbatimSymlinks: true });
  } catch (error) {
    fs.rmSync(to, { recursive: true, force: true });
    throw new Error(`cannot copy ${from} to ${to} (another file system): ${describeError(error)}`);
  }
  fs.rmSync(from, { recursive: true, force: true });
}

/** Starts the installed version on its own (detached: it outlives the updater). */
export function launchInstalled(job: UpdaterJob, log: Logger): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, OUTPOST_HOME: job.storage };
    // The crash tests' switch is for this updater only, never for the agents and updaters after it.
    delete env.OUTPOST_UPDATER_TEST_CRASH_AT;
    const child = spawn(job.launch.command, job.launch.args, { detached: true, stdio: 'ignore', env });
    child.once('error', (error) => reject(new Error(`cannot start ${job.launch.command}: ${describeError(error)}`)));
    child.once('spawn', () => {
      log.info(`started ${job.launch.command} ${job.launch.args.join(' ')} (pid ${child.pid})`);
      child.unref();
      resolve(child);
    });
  });
}

/**
 * Healthy: the new version holds the lock and reached IDLE, which it proves by writing the job's
 * health record (it checks for a job in progress at start), and it still runs.
 */
async function waitForHealth({ job, platform }: JobContext, child: ChildProcess): Promise<void> {
  let exit: string | null = null;
  child.once('exit', (code, signal) => {
    exit = signal ? `signal ${signal}` : `exit code ${code}`;
  });
  const deadline = Date.now() + job.health_timeout_ms;
  while (Date.now() < deadline) {
    if (exit) throw new Error(`${job.new_version} exited during start-up (${exit})`);
    if (liveHealthRecord(job, platform)) return;
    await sleep(50);
  }
  throw new Error(`${job.new_version} did not become healthy within ${job.health_timeout_ms} ms (it started but never reported IDLE)`);
}

async function stopNew(context: JobContext, launched: ChildProcess | undefined): Promise<void> {
  if (launched?.pid !== undefined) await stopProcess(context, launched.pid);
}

/** SIGTERM, up to 5 s to shut down gracefully, then SIGKILL. */
export async function stopProcess({ platform }: JobContext, pid: number): Promise<void> {
  if (!platform.isProcessAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  for (let i = 0; i < 100 && platform.isProcessAlive(pid); i++) await sleep(50);
  if (platform.isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
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

/** Where a failed new version is put aside while the backup is restored (then removed). */
export function failedInstallDir(job: UpdaterJob): string {
  return `${job.install_dir}.failed-${job.job_id}`;
}

/** The circuit breaker: a version that failed is counted, and the agent stops offering it after two. */
export function recordFailure({ job, now }: JobContext): void {
  const file = path.join(job.storage, 'updates', 'failed-versions.json');
  let failures: Record<string, { count: number; last: string }> = {};
  try {
    failures = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    // first failure
  }
  const previous = failures[job.new_version]?.count ?? 0;
  failures[job.new_version] = { count: previous + 1, last: now().toISOString() };
  writeFileAtomic(file, JSON.stringify(failures));
}

/** An error report for the agent to send: appended to its buffer, which it reads at start. */
export function queueReport({ job, now, log }: JobContext, code: string, message: string, context: Record<string, string> = {}): void {
  let agentId = 'unknown';
  try {
    agentId = fs.readFileSync(path.join(job.storage, 'agent_id'), 'utf8').trim() || agentId;
  } catch {
    // a report without the id is still worth sending
  }
  const report = ErrorReport.parse({
    id: randomUUID(),
    time: now().toISOString(),
    agent_id: agentId,
    agent_version: job.old_version,
    state: 'UPDATING_HANDOFF',
    code,
    message: message.slice(0, 2_000),
    context: { ...context, from_version: job.old_version, to_version: job.new_version, job_id: job.job_id },
  });
  appendLineDurable(path.join(job.storage, 'error_reports.jsonl'), `${JSON.stringify(report)}\n`);
  log.info(`error report queued for the agent: ${code}`);
}

function codeFor(step: Step): string {
  if (step === 'health') return 'ERR_UPDATE_UNHEALTHY';
  if (step === 'launch') return 'ERR_UPDATE_LAUNCH';
  return 'ERR_UPDATE_SWAP';
}

export function finishJob({ job, journal, now }: JobContext, outcome: UpdateOutcome, reason: string | null): UpdateOutcome {
  journal.append('outcome', 'end', { outcome, reason });
  const record = path.join(job.storage, 'updates', 'last-update.json');
  writeFileAtomic(record, JSON.stringify({ job_id: job.job_id, outcome, from: job.old_version, to: job.new_version, reason, at: now().toISOString() }));
  return outcome;
}
