/**
 * Exit codes of the `outpost` command (CONTRACT.md). Scripts and installers depend on these numbers:
 * never renumber one. Values past 5 follow BSD sysexits.h.
 */
export const ExitCode = {
  OK: 0,
  NOT_RUNNING: 1,
  LOCK_HELD: 2,
  BUSY_UPDATING: 3,
  AUTH_FAILED: 4,
  TIMED_OUT: 5,
  USAGE: 64,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  CANT_CREATE: 73,
  NO_PERMISSION: 77,
  CONFIG: 78,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
