import * as z from 'zod';
import { ProcessIdentity } from './process-identity.js';

/**
 * The files between the agent and the standalone updater, all under `<storage>/updates/` (their
 * paths come from one locator, base/storage-layout.ts). Each schema is used by the file's writer and
 * by its readers, in either process.
 */

/**
 * `job.json`: what the agent hands the updater (`outpost-updater --job FILE`). Written by the agent,
 * validated by the updater. Paths are absolute.
 */
export const UpdaterJob = z
  .object({
    job_id: z.string().regex(/^[A-Za-z0-9-]{8,64}$/),
    /** The installation to replace. */
    install_dir: z.string().min(1),
    /** The verified, complete tree of the new version (updates/<version>/). */
    staged_dir: z.string().min(1),
    /** Where the installed version is moved while the new one proves itself. */
    backup_dir: z.string().min(1),
    /** The agent that handed over: the swap waits for it to exit. */
    old_pid: z.number().int().positive(),
    old_version: z.string().min(1),
    new_version: z.string().min(1),
    /** How to start the installed version (the same command starts old and new: it runs what is installed). */
    launch: z.object({ command: z.string().min(1), args: z.array(z.string()) }).strict(),
    /** The agent's storage folder: the job's files live in its updates/, failures are queued in its report buffer. */
    storage: z.string().min(1),
    exit_timeout_ms: z.number().int().min(100).max(600_000),
    health_timeout_ms: z.number().int().min(100).max(600_000),
  })
  .strict();
export type UpdaterJob = z.infer<typeof UpdaterJob>;

/**
 * The updater's steps, in order. Each is written to the journal before it is taken and after it is
 * done; a crash at any point is finished or undone by whoever runs next (see updater/recover.ts).
 */
export const FORWARD_STEPS = ['wait_old_exit', 'backup', 'swap', 'launch', 'health', 'commit'] as const;
/** Taken, in order, when a forward step fails before the point of no return. */
export const ROLLBACK_STEPS = ['stop_new', 'restore', 'report', 'relaunch_old'] as const;
export const JournalStep = z.enum([...FORWARD_STEPS, ...ROLLBACK_STEPS]);
export type JournalStep = z.infer<typeof JournalStep>;

/** How a job ended: recorded last in its journal and in `last-update.json`. */
export const UpdateOutcome = z.enum(['committed', 'rolled_back', 'aborted']);
export type UpdateOutcome = z.infer<typeof UpdateOutcome>;

const detailValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** A step begun, done or failed (`detail`: the launched pid, the failure's message). */
export const StepEntry = z
  .object({
    step: JournalStep,
    phase: z.enum(['begin', 'end', 'fail']),
    at: z.string(),
    detail: z.record(z.string(), detailValue).optional(),
  })
  .strict();
export type StepEntry = z.infer<typeof StepEntry>;

/** The job's last word: nothing follows it. */
export const OutcomeEntry = z.object({ outcome: UpdateOutcome, reason: z.string().nullable(), at: z.string() }).strict();
export type OutcomeEntry = z.infer<typeof OutcomeEntry>;

/** One line of `journal-<job>.jsonl`: a step entry, or (once, last) the outcome. */
export const JournalEntry = z.union([StepEntry, OutcomeEntry]);
export type JournalEntry = z.infer<typeof JournalEntry>;

export function isOutcomeEntry(entry: JournalEntry): entry is OutcomeEntry {
  return 'outcome' in entry;
}

/**
 * `updater-<job>.ready`: written by the updater once it runs (the agent waits for it before it shuts
 * down), and `recovery-<job>.lock`, held by the one recovery at work: who owns the job now.
 */
export const JobOwner = ProcessIdentity.strict();
export type JobOwner = z.infer<typeof JobOwner>;

/**
 * `health-<job>.json`: written by the new version once it holds the lock and reached IDLE while the
 * updater waits for it: the updater's proof of health. A file rather than a question over IPC, because
 * the updater must not need the IPC secret (it may live in the user's credential store, out of reach
 * of a single executable without its bindings).
 */
export const HealthRecord = z
  .object({
    job_id: z.string(),
    pid: z.number().int().positive(),
    version: z.string(),
    state: z.literal('IDLE'),
    at: z.string(),
  })
  .strict();
export type HealthRecord = z.infer<typeof HealthRecord>;

/** `failed-versions.json`: the circuit breaker, how often each version was rolled back. */
export const FailedVersions = z.record(z.string(), z.object({ count: z.number().int().nonnegative(), last: z.string() }).strict());
export type FailedVersions = z.infer<typeof FailedVersions>;

/** `staged.json`: the version whose complete, verified tree waits in `updates/<version>/`. */
export const StagedRecord = z.object({ version: z.string(), staged_at: z.string() }).strict();
export type StagedRecord = z.infer<typeof StagedRecord>;

/** `last-update.json`: how the last job ended, for the agent, admins and tests. */
export const LastUpdate = z
  .object({
    job_id: z.string(),
    outcome: UpdateOutcome,
    from: z.string(),
    to: z.string(),
    reason: z.string().nullable(),
    at: z.string(),
  })
  .strict();
export type LastUpdate = z.infer<typeof LastUpdate>;

/** What the last download of a release cost: the bytes that came over the wire, against the release's size
 * (`updates/last-download.json`, written by the agent, so that the version it hands over shows it too). */
export const DownloadCost = z.object({ version: z.string(), downloaded_bytes: z.number().int().nonnegative(), release_bytes: z.number().int().nonnegative() }).strict();
export type DownloadCost = z.infer<typeof DownloadCost>;
