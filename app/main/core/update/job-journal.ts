import fs from 'node:fs';
import path from 'node:path';
import { JournalEntry, UpdaterJob } from '../../../common/updater-job.js';
import type { Platform } from '../../platform/index.js';

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

/**
 * An update job that did not end and whose updater is gone (a crash, a logoff, a power cut): the
 * agent must not just run, it hands the job to the updater's recovery first. Null when there is none,
 * or when the updater is still at work (it started this agent: the new version proving itself).
 */
export function interruptedJob(updatesDir: string, platform: Platform): { job: UpdaterJob; jobFile: string; at: string } | null {
  const jobFile = path.join(updatesDir, 'job.json');
  let job: UpdaterJob;
  try {
    job = UpdaterJob.parse(JSON.parse(fs.readFileSync(jobFile, 'utf8')));
  } catch {
    return null;
  }
  const entries = readJournal(job.journal);
  if (entries.length === 0 || entries.some((e) => e.step === 'outcome')) return null;
  // The updater, or a recovery, at work: this agent is the version they started, to prove itself.
  for (const owner of [job.ready_file, recoveryLockFile(job)]) {
    const pid = Number.parseInt(readText(owner), 10);
    if (Number.isInteger(pid) && pid > 0 && platform.isProcessAlive(pid)) return null;
  }
  const last = entries.at(-1) as JournalEntry;
  return { job, jobFile, at: `${last.step}:${last.phase}` };
}

/** Held (with its pid) by the one recovery at work on a job. */
export function recoveryLockFile(job: UpdaterJob): string {
  return path.join(path.dirname(job.journal), `recovery-${job.job_id}.lock`);
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
