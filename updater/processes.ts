import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestSwitch } from '../app/base/build-flavor.js';
import { describeError } from '../app/base/errors.js';
import type { Logger } from '../app/base/logger.js';
import { waitUntilGone } from '../app/base/process-liveness.js';
import { liveHealthRecord } from '../app/base/update-records.js';
import type { UpdaterJob } from '../app/common/update-files.js';
import type { JobContext } from './context.js';

/** How long a stopped version has to shut down gracefully before it is killed. */
const STOP_GRACE_MS = 5_000;

/** The old agent must be gone before its files are moved: bounded, then the job is given up. */
export async function waitForExit({ job, platform }: JobContext): Promise<void> {
  const isAlive = (pid: number) => platform.isProcessAlive(pid);
  await waitUntilGone(job.old_pid, isAlive, job.exit_timeout_ms);
  if (isAlive(job.old_pid)) throw new Error(`the agent (pid ${job.old_pid}) did not exit within ${job.exit_timeout_ms} ms; the installed version was left as it is`);
}

/** Starts the installed version on its own (detached: it outlives the updater). */
export function launchInstalled(job: UpdaterJob, log: Logger): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, OUTPOST_HOME: job.storage };
    // The crash tests' switch is for this updater only, never for the agents and updaters after it.
    delete env[TestSwitch.UPDATER_CRASH_AT];
    // In the storage folder: a version working in the installation would hold it (Windows renames no process's working folder).
    const child = spawn(job.launch.command, job.launch.args, { detached: true, stdio: 'ignore', env, cwd: job.storage });
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
export async function waitForHealth({ job, platform }: JobContext, child: ChildProcess): Promise<void> {
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

/** Stops a version the updater started or found running (the platform knows how: a signal, then a kill). */
export async function stopProcess({ platform }: JobContext, pid: number): Promise<void> {
  await platform.stopProcess(pid, STOP_GRACE_MS);
}
