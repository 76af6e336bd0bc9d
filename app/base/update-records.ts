import {
  DownloadCost,
  FailedVersions,
  HealthRecord,
  isOutcomeEntry,
  JobOwner,
  JournalEntry,
  LastUpdate,
  type OutcomeEntry,
  StagedRecord,
  type StepEntry,
  type UpdateOutcome,
  UpdaterJob,
} from '../common/update-files.js';
import { appendLineDurable, readRecord, writeRecord } from './durable-file.js';
import { jsonLineOf, readJsonLines } from './jsonl.js';
import { identifySelf, type ProcessProbe, readLiveRecord } from './process-liveness.js';
import { storagePaths, type UpdatePaths } from './storage-layout.js';

/**
 * Reading and writing the files between the agent and the updater (common/update-files.ts), for both
 * processes: each goes through its schema on the way out and on the way in.
 */

/** The paths of a job's files (under its storage folder's updates/). */
export function jobPaths(job: UpdaterJob): UpdatePaths {
  return storagePaths(job.storage).updates;
}

export function readLastDownload(updates: UpdatePaths): DownloadCost | null {
  return readRecord(updates.lastDownload, DownloadCost);
}

export function writeLastDownload(updates: UpdatePaths, cost: DownloadCost): void {
  writeRecord(updates.lastDownload, DownloadCost, cost);
}

export function writeJob(updates: UpdatePaths, job: UpdaterJob): void {
  writeRecord(updates.job, UpdaterJob, job, true);
}

/** The last job the agent handed over (`job.json`), or null. */
export function readJob(updates: UpdatePaths): UpdaterJob | null {
  return readRecord(updates.job, UpdaterJob);
}

export interface JobJournal {
  readonly steps: readonly StepEntry[];
  /** The job's last word, once it has ended. */
  readonly outcome: OutcomeEntry | null;
}

/** A job's journal as far as it goes; a torn last line (a crash mid-append) is left out. */
export function readJournal(file: string): JobJournal {
  let entries: JournalEntry[];
  try {
    entries = readJsonLines(file, jsonLineOf(JournalEntry)).entries;
  } catch {
    entries = []; // unreadable is as good as not begun: nothing in it can be acted on
  }
  const steps: StepEntry[] = [];
  let outcome: OutcomeEntry | null = null;
  for (const entry of entries) {
    if (isOutcomeEntry(entry)) outcome ??= entry;
    else steps.push(entry);
  }
  return { steps, outcome };
}

/** One line, fsynced, before the step it announces is taken (the updater's Journal). */
export function appendJournal(file: string, entry: JournalEntry): void {
  appendLineDurable(file, `${JSON.stringify(JournalEntry.parse(entry))}\n`);
}

/** How the job ended, or null while it has not. */
export function outcomeOf(job: UpdaterJob): UpdateOutcome | null {
  return readJournal(jobPaths(job).journal(job.job_id)).outcome?.outcome ?? null;
}

/** What the updater writes into its ready file, and a recovery into its lock: this process. */
export function ownerRecordText(probe: ProcessProbe): string {
  return JSON.stringify(JobOwner.parse(identifySelf(probe)));
}

/** The pid of the updater or recovery at work on the job, if that very process is alive. */
export function jobOwner(job: UpdaterJob, probe: ProcessProbe): number | null {
  const files = jobPaths(job);
  for (const file of [files.readyFile(job.job_id), files.recoveryLock(job.job_id)]) {
    const owner = readLiveRecord(file, probe, JobOwner);
    if (owner !== null) return owner.pid;
  }
  return null;
}

/** The new version's proof of health, written once it is IDLE (see HealthRecord). */
export function writeHealthRecord(job: UpdaterJob, version: string, at: Date): void {
  writeRecord(jobPaths(job).healthRecord(job.job_id), HealthRecord, { job_id: job.job_id, pid: process.pid, version, state: 'IDLE', at: at.toISOString() });
}

/** The health record of the job's new version, if that version wrote one and still runs. */
export function liveHealthRecord(job: UpdaterJob, probe: ProcessProbe): HealthRecord | null {
  const record = readRecord(jobPaths(job).healthRecord(job.job_id), HealthRecord);
  return record !== null && record.job_id === job.job_id && record.version === job.new_version && probe.isProcessAlive(record.pid) ? record : null;
}

/** How often a version was rolled back (the circuit breaker). A damaged file counts as none. */
export function failedAttempts(updates: UpdatePaths, version: string): number {
  return readRecord(updates.failedVersions, FailedVersions)?.[version]?.count ?? 0;
}

export function recordFailedAttempt(updates: UpdatePaths, version: string, at: Date): void {
  const failures = readRecord(updates.failedVersions, FailedVersions) ?? {};
  failures[version] = { count: (failures[version]?.count ?? 0) + 1, last: at.toISOString() };
  writeRecord(updates.failedVersions, FailedVersions, failures);
}

export function readStaged(updates: UpdatePaths): StagedRecord | null {
  return readRecord(updates.staged, StagedRecord);
}

export function writeStaged(updates: UpdatePaths, version: string, at: Date): void {
  writeRecord(updates.staged, StagedRecord, { version, staged_at: at.toISOString() });
}

export function writeLastUpdate(updates: UpdatePaths, record: LastUpdate): void {
  writeRecord(updates.lastUpdate, LastUpdate, record);
}

export function readLastUpdate(updates: UpdatePaths): LastUpdate | null {
  return readRecord(updates.lastUpdate, LastUpdate);
}
