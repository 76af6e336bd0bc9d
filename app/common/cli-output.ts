import * as z from 'zod';
import { StatusData } from './ipc.js';

/**
 * The line the foreground `outpost` command prints once the agent is IDLE. Scripts, the demo, the
 * benchmarks and the tests wait for it, so it is written and matched from this one place.
 */
export function runningLine(version: string, pid: number, storage: string): string {
  return `Outpost ${version} running (pid ${pid}, storage ${storage}); stop with Ctrl+C`;
}

/** Matches `runningLine`; group 1 is the pid. (Not the refusal "Another Outpost is running (pid N".) */
export const RUNNING_LINE = /Outpost \d\S* running \(pid (\d+)/;

/** Start at login, as `outpost status` shows it: read by the command itself, beside the agent's answer. */
export const AutostartStatus = z
  .object({
    /** null: the entry could not be read (the reason is on stderr); status still answers. */
    enabled: z.boolean().nullable(),
    /** The entry's file or registry value, whether or not it exists. */
    location: z.string(),
    /** user: this user's entry; machine: every user's (the command ran elevated). */
    scope: z.enum(['user', 'machine']),
  })
  .strict();
export type AutostartStatus = z.infer<typeof AutostartStatus>;

/** The one line `outpost status` prints (CONTRACT.md): the agent's status, and start at login. */
export const StatusLine = StatusData.extend({ autostart: AutostartStatus }).strict();
export type StatusLine = z.infer<typeof StatusLine>;
