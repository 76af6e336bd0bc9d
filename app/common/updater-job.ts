import { z } from 'zod';

/**
 * What the agent hands the standalone updater (`outpost-updater --job FILE`): written by the agent,
 * validated by the updater. Paths are absolute.
 */
export const UpdaterJob = z
  .object({
    job_id: z.string().min(8).max(64),
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
    /** The agent's storage folder: health is asked over its IPC, failures are queued in its report buffer. */
    storage: z.string().min(1),
    exit_timeout_ms: z.number().int().min(100).max(600_000),
    health_timeout_ms: z.number().int().min(100).max(600_000),
    /** The journal: one JSON line before and after every step (fsync). */
    journal: z.string().min(1),
    /** Written by the updater once it runs: the agent waits for it before it shuts down. */
    ready_file: z.string().min(1),
  })
  .strict();
export type UpdaterJob = z.infer<typeof UpdaterJob>;

/** One line of the journal. */
export const JournalEntry = z
  .object({
    step: z.string(),
    phase: z.enum(['begin', 'end', 'fail']),
    at: z.string(),
    detail: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
  })
  .strict();
export type JournalEntry = z.infer<typeof JournalEntry>;

/** How a job ended, recorded last in the journal (step "outcome") and in `updates/last-update.json`. */
export const UPDATE_OUTCOMES = ['committed', 'rolled_back', 'aborted'] as const;
export type UpdateOutcome = (typeof UPDATE_OUTCOMES)[number];

/**
 * Written by the new version once it holds the lock and reached IDLE while the updater waits for it
 * (`updates/health-<job_id>.json`): the updater's proof of health. A file rather than a question over
 * IPC, because the updater must not need the IPC secret (it may live in the user's credential store,
 * out of reach of a single executable without its bindings).
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
