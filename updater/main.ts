import fs from 'node:fs';
import { TestSwitch, testSwitch } from '../app/base/build-flavor.js';
import { writeFileAtomic } from '../app/base/durable-file.js';
import { storagePaths } from '../app/base/storage-layout.js';
import { ownerRecordText } from '../app/base/update-records.js';
import { ExitCode } from '../app/common/exit-codes.js';
import { type UpdateOutcome, UpdaterJob } from '../app/common/update-files.js';
import { describeError, describeFsError, errnoCode } from '../app/base/errors.js';
import { tryParseJson } from '../app/base/jsonl.js';
import { createFileLogger } from '../app/base/logger.js';
import { createPlatform } from '../app/main/platform/index.js';
import { APP_VERSION } from '../app/base/version.js';
import { Journal } from './journal.js';
import { recoverJob } from './recover.js';
import { runJob } from './run-job.js';

const USAGE = 'usage: outpost-updater --job FILE [--recover] | --version';

/**
 * `outpost-updater --job FILE`: the standalone updater. Started by the agent, which waits for the
 * job's ready file before it shuts down. With --recover, finishes or undoes a job a crash
 * interrupted (see recover.ts). Exit codes (common/exit-codes.ts): 0 committed, 10 rolled back,
 * 11 abandoned before anything changed, 64 usage, 78 an unreadable job.
 */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === '--version') {
    process.stdout.write(`outpost-updater ${APP_VERSION} (Node ${process.versions.node})\n`);
    return ExitCode.OK;
  }
  const recover = argv[2] === '--recover';
  if (argv[0] !== '--job' || !argv[1] || argv.length !== (recover ? 3 : 2)) {
    process.stderr.write(`outpost-updater: ${USAGE}\n`);
    return ExitCode.USAGE;
  }
  const job = readJobFile(argv[1]);
  if (typeof job === 'string') {
    process.stderr.write(`outpost-updater: cannot use the job ${argv[1]}: ${job}\n`);
    return ExitCode.CONFIG;
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
  const files = storagePaths(job.storage).updates;
  const journal = new Journal(files.journal(job.job_id), now, testSwitch(process.env, TestSwitch.UPDATER_CRASH_AT));
  const context = { job, files, platform: createPlatform(), journal, log, now };
  if (recover) {
    const outcome = await recoverJob(context);
    log.info(`recovery done: ${outcome}`);
    return EXIT_CODE_OF_OUTCOME[outcome];
  }
  // The agent waits for this before it shuts down: from here on, the job is ours. Atomic: the agent
  // looks for the file's existence, so it must never exist without its record.
  writeFileAtomic(files.readyFile(job.job_id), ownerRecordText(context.platform));
  const outcome = await runJob(context);
  log.info(`updater done: ${outcome}`);
  return EXIT_CODE_OF_OUTCOME[outcome];
}

const EXIT_CODE_OF_OUTCOME: Readonly<Record<UpdateOutcome, ExitCode>> = {
  committed: ExitCode.OK,
  rolled_back: ExitCode.UPDATE_ROLLED_BACK,
  aborted: ExitCode.UPDATE_ABORTED,
};

/** The job, or what is wrong with its file: unreadable (errno), not JSON, or not a job of this updater (the first field that is off). */
function readJobFile(file: string): UpdaterJob | string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    return `${errnoCode(error) ?? 'unreadable'} (${describeFsError(error)})`;
  }
  const parsed = UpdaterJob.safeParse(tryParseJson(text));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  return `it is not a job of this updater (${issue ? `${issue.path.join('.') || 'the file'}: ${issue.message}` : 'not JSON'})`;
}
