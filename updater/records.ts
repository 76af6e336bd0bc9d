import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { appendLineDurable } from '../app/base/durable-file.js';
import { recordFailedAttempt, writeLastUpdate } from '../app/base/update-records.js';
import { ErrorCode } from '../app/common/codes.js';
import { ErrorReport } from '../app/common/reports.js';
import type { JournalStep, UpdateOutcome, UpdaterJob } from '../app/common/update-files.js';
import { storagePaths } from '../app/base/storage-layout.js';
import type { JobContext } from './context.js';

/** Where a failed new version is put aside while the backup is restored (then removed). */
export function failedInstallDir(job: UpdaterJob): string {
  return `${job.install_dir}.failed-${job.job_id}`;
}

/** The circuit breaker: a version that failed is counted, and the agent stops offering it after two. */
export function recordFailure({ job, files, now }: JobContext): void {
  recordFailedAttempt(files, job.new_version, now());
}

/** An error report for the agent to send: appended to its buffer, which it reads at start. */
export function queueReport({ job, now, log }: JobContext, code: ErrorCode, message: string, context: Record<string, string> = {}): void {
  const paths = storagePaths(job.storage);
  let agentId = 'unknown';
  try {
    agentId = fs.readFileSync(paths.agentId, 'utf8').trim() || agentId;
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
  appendLineDurable(paths.errorReports, `${JSON.stringify(report)}\n`);
  log.info(`error report queued for the agent: ${code}`);
}

/** The code of a rollback's report, by the step that failed. */
export function codeFor(step: JournalStep): ErrorCode {
  if (step === 'health') return ErrorCode.UPDATE_UNHEALTHY;
  if (step === 'launch') return ErrorCode.UPDATE_LAUNCH;
  return ErrorCode.UPDATE_SWAP;
}

/** The job's last word: the outcome in its journal, then `last-update.json`. */
export function finishJob({ job, files, journal, now }: JobContext, outcome: UpdateOutcome, reason: string | null): UpdateOutcome {
  journal.outcome(outcome, reason);
  writeLastUpdate(files, { job_id: job.job_id, outcome, from: job.old_version, to: job.new_version, reason, at: now().toISOString() });
  return outcome;
}
