import * as z from 'zod';

/**
 * A process named so that a later process that reuses its pid is not taken for it: its pid and an
 * opaque start time from the OS (null where the OS cannot tell). Written into the files by which a
 * process claims something: the agent's lock, the updater's ready file, a recovery's lock.
 */
export const ProcessIdentity = z.object({
  pid: z.number().int().positive(),
  start_time: z.string().nullable(),
});
export type ProcessIdentity = z.infer<typeof ProcessIdentity>;

/** The single-instance lock (`agent.lock`): its holder, and for outsiders (the updater) the version it runs. */
export const LockRecord = ProcessIdentity.extend({
  version: z.string(),
  heartbeat: z.iso.datetime(),
  acquired_at: z.iso.datetime(),
  token: z.string(),
});
export type LockRecord = z.infer<typeof LockRecord>;
