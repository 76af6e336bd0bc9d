import fs from 'node:fs';
import { UpdaterJob } from '../app/common/updater-job.js';
import { describeError } from '../app/main/core/errors.js';
import { createFileLogger } from '../app/main/core/logger.js';
import { createPlatform } from '../app/main/platform/index.js';
import { APP_VERSION } from '../app/main/version.js';
import { ownerRecord } from '../app/main/core/update/job-journal.js';
import { Journal } from './journal.js';
import { recoverJob } from './recover.js';
import { runJob } from './run-job.js';

const USAGE = 'usage: outpost-updater --job FILE [--recover] | --version';

/**
 * `outpost-updater --job FILE`: the standalone updater. Started by the agent, which waits for the
 * job's ready file before it shuts down. With --recover, finishes or undoes a job a crash
 * interrupted (see recover.ts). Exit codes: 0 committed, 1 rolled back, 2 abandoned before
 * anything changed, 64 usage, 78 an unreadable job.
 */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === '--version') {
    process.stdout.write(`outpost-updater ${APP_VERSION} (Node ${process.versions.node})\n`);
    return 0;
  }
  const recover = argv[2] === '--recover';
  if (argv[0] !== '--job' || !argv[1] || argv.length !== (recover ? 3 : 2)) {
    process.stderr.write(`outpost-updater: ${USAGE}\n`);
    return 64;
  }
  let job: UpdaterJob;
  try {
    job = UpdaterJob.parse(JSON.parse(fs.readFileSync(argv[1], 'utf8')));
  } catch (error) {
    process.stderr.write(`outpost-updater: cannot use the job ${argv[1]}: ${describeError(error)}\n`);
    return 78;
  }
  const now = () => new Date();
  const log = createFileLogger({ dir: `${job.storage}/logs`, level: 'info', stderrLevel: false }).child('updater');
  log.info(`updater running (pid ${process.pid}, ${process.execPath}): ${job.old_version} -> ${job.new_version}`, { job: job.job_id });
  // The working folder comes from the agent, which may run from inside its installation (a shortcut's
  // "Start in"): Windows will not rename a folder that is a process's working folder, so the backup
  // would fail. The storage folder is never moved, and the versions launched from here inherit it.
  try {
    process.chdir(job.storage);
  } catch (error) {
    log.warn(`cannot make ${job.storage} the working folder (it stays ${process.cwd()}): ${describeError(error)}`);
  }
  const journal = new Journal(job.journal, now, process.env.OUTPOST_UPDATER_TEST_CRASH_AT);
  const context = { job, platform: createPlatform(), journal, log, now };
  if (recover) {
    const outcome = await recoverJob(context);
    log.info(`recovery done: ${outcome}`);
    return outcome === 'committed' ? 0 : outcome === 'rolled_back' ? 1 : 2;
  }
  // The agent waits for this before it shuts down: from here on, the job is ours.
  fs.writeFileSync(job.ready_file, ownerRecord(context.platform), { mode: 0o600 });
  const outcome = await runJob(context);
  log.info(`updater done: ${outcome}`);
  return outcome === 'committed' ? 0 : outcome === 'rolled_back' ? 1 : 2;
}
