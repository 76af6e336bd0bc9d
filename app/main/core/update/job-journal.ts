import fs from 'node:fs';
import path from 'node:path';
import { HealthRecord, JournalEntry, type UpdateOutcome, UpdaterJob } from '../../../common/updater-job.js';
import type { Platform } from '../../platform/index.js';
import { writeFileAtomic } from '../atomic-file.js';

/** The updater's journal, read (the updater writes it: updater/journal.ts). A torn last line is ignored. */
export function readJournal(file: string): JournalEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const entries: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const parsed = JournalEntry.safeParse(JSON.parse(line));
      if (parsed.success) entries.push(parsed.data);
    } catch {
      // the torn tail of a crash mid-append
    }
  }
  return entries;
}

/** How the job ended (its journal's last word), or null while it has not. */
export function outcomeOf(job: UpdaterJob): UpdateOutcome | null {
  const done = readJournal(job.journal).find((e) => e.step === 'outcome');
  return (done?.detail?.outcome as UpdateOutcome | undefined) ?? null;
}

/** The last job the agent handed over (`updates/job.json`), or null. */
export function readJob(updatesDir: string): { job: UpdaterJob; jobFile: string } | null {
  const jobFile = path.join(updatesDir, 'job.json');
  try {
    return { job: UpdaterJob.parse(JSON.parse(fs.readFileSync(jobFile, 'utf8'))), jobFile };
  } catch {
    return null;
  }
}

/** The pid of the updater or recovery at work on the job, if one is alive. */
export function jobOwner(job: UpdaterJob, platform: Platform): number | null {
  for (const owner of [job.ready_file, recoveryLockFile(job)]) {
    const pid = liveOwner(owner, platform);
    if (pid !== null) return pid;
  }
  return null;
}

/**
 * What the updater writes into its ready file, and a recovery into its lock: its pid and start time,
 * so that a later process that reuses the pid is not taken for it.
 */
export function ownerRecord(platform: Platform): string {
  return JSON.stringify({ pid: process.pid, start_time: startTime(platform, process.pid) });
}

/** The pid an owner record names, if that very process still runs. */
export function liveOwner(file: string, platform: Platform): number | null {
  let record: unknown;
  try {
    record = JSON.parse(readText(file));
  } catch {
    return null;
  }
  if (typeof record !== 'object' || record === null) return null;
  const { pid, start_time: started } = record as { pid?: unknown; start_time?: unknown };
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || !platform.isProcessAlive(pid)) return null;
  if (typeof started !== 'string') return pid; // the OS could not tell the start time
  return startTime(platform, pid) === started ? pid : null;
}

function startTime(platform: Platform, pid: number): string | null {
  try {
    return platform.processStartTime(pid);
  } catch {
    return null; // Windows without its ffi-rs binding: liveness alone
  }
}

export type UnfinishedJob = { readonly job: UpdaterJob; readonly jobFile: string; readonly at: string };

/**
 * The job that has begun and not ended, seen by an agent that starts:
 * - `interrupted`: its updater is gone (a crash, a logoff, a power cut); the agent must not just run,
 *   it hands the job to the updater's recovery first;
 * - `in_progress`: the updater (or a recovery) is at work and started this agent, to prove itself.
 */
export function unfinishedJob(updatesDir: string, platform: Platform): ({ readonly kind: 'interrupted' | 'in_progress' } & UnfinishedJob) | null {
  const found = readJob(updatesDir);
  if (!found) return null;
  const entries = readJournal(found.job.journal);
  if (entries.length === 0 || entries.some((e) => e.step === 'outcome')) return null;
  const last = entries.at(-1) as JournalEntry;
  const kind = jobOwner(found.job, platform) === null ? 'interrupted' : 'in_progress';
  return { kind, ...found, at: `${last.step}:${last.phase}` };
}

/** Held (with its pid) by the one recovery at work on a job. */
export function recoveryLockFile(job: UpdaterJob): string {
  return path.join(path.dirname(job.journal), `recovery-${job.job_id}.lock`);
}

export function healthRecordFile(job: UpdaterJob): string {
  return path.join(path.dirname(job.journal), `health-${job.job_id}.json`);
}

/** The new version's proof of health, written once it is IDLE (see HealthRecord). */
export function writeHealthRecord(job: UpdaterJob, version: string, at: Date): void {
  const record: HealthRecord = { job_id: job.job_id, pid: process.pid, version, state: 'IDLE', at: at.toISOString() };
  writeFileAtomic(healthRecordFile(job), JSON.stringify(record));
}

/** The health record of the job's new version, if that version wrote one and still runs. */
export function liveHealthRecord(job: UpdaterJob, platform: Platform): HealthRecord | null {
  try {
    const record = HealthRecord.parse(JSON.parse(fs.readFileSync(healthRecordFile(job), 'utf8')));
    return record.job_id === job.job_id && record.version === job.new_version && platform.isProcessAlive(record.pid) ? record : null;
  } catch {
    return null;
  }
}

/** A small file's text, or '' when it cannot be read (missing, or removed while we look). */
export function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
