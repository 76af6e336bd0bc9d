import type { ErrorCode } from './codes.js';

/**
 * The exit codes of all four commands (`outpost`, `outpost-updater`, `outpost-server`,
 * `outpost-release`), one table: a number means the same thing whichever command returns it. Scripts and
 * installers depend on them: never renumber one. 0-5, 64 and 78 are the product's contract; 10 and 11 are
 * the updater's outcomes; values from 64 follow BSD sysexits.h.
 */
export const ExitCode = {
  OK: 0,
  /** outpost status: no agent runs. */
  NOT_RUNNING: 1,
  /** outpost: another instance holds the lock. */
  LOCK_HELD: 2,
  /** outpost --force refused while the agent updates, and an agent that hands an interrupted update to its recovery. */
  BUSY_UPDATING: 3,
  AUTH_FAILED: 4,
  TIMED_OUT: 5,
  /** outpost-updater: the new version failed and the old one was put back. */
  UPDATE_ROLLED_BACK: 10,
  /** outpost-updater: the job was given up before anything changed. */
  UPDATE_ABORTED: 11,
  USAGE: 64,
  /** outpost-release: input it refuses (an application folder, a feed, a version, a key file that is not a key). */
  DATA: 65,
  /** outpost-release: a key it needs is not in the keys folder; outpost-server: no feed folder. */
  NO_INPUT: 66,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  CANT_CREATE: 73,
  IO: 74,
  NO_PERMISSION: 77,
  CONFIG: 78,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit code that goes with each error, whichever command meets it. */
export const EXIT_CODE_OF: Readonly<Record<ErrorCode, ExitCode>> = {
  ERR_USAGE: ExitCode.USAGE,
  ERR_NOT_AVAILABLE: ExitCode.UNAVAILABLE,
  ERR_INTERNAL: ExitCode.SOFTWARE,
  ERR_LOCK_HELD: ExitCode.LOCK_HELD,
  ERR_LOCK_COMPROMISED: ExitCode.LOCK_HELD,
  ERR_LOCK_IO: ExitCode.CANT_CREATE,
  ERR_CONFIG_UNREADABLE: ExitCode.CONFIG,
  ERR_CONFIG_PARSE: ExitCode.CONFIG,
  ERR_CONFIG_INVALID: ExitCode.CONFIG,
  ERR_CONFIG_TOO_NEW: ExitCode.CONFIG,
  ERR_STORAGE_UNSAFE: ExitCode.NO_PERMISSION,
  ERR_STORAGE_CREATE: ExitCode.CANT_CREATE,
  ERR_PLATFORM_CALL: ExitCode.SOFTWARE,
  ERR_IPC_ENDPOINT_BUSY: ExitCode.CANT_CREATE,
  ERR_IPC_NOT_RUNNING: ExitCode.NOT_RUNNING,
  ERR_IPC_AUTH: ExitCode.AUTH_FAILED,
  ERR_IPC_TIMEOUT: ExitCode.TIMED_OUT,
  ERR_IPC_PROTOCOL: ExitCode.SOFTWARE,
  ERR_IPC_SECRET: ExitCode.CONFIG,
  ERR_BUSY_UPDATING: ExitCode.BUSY_UPDATING,
  ERR_FORCE_TIMEOUT: ExitCode.TIMED_OUT,
  ERR_QUIT_TIMEOUT: ExitCode.TIMED_OUT,
  ERR_BACKEND_CREDENTIAL: ExitCode.CONFIG,
  ERR_AGENT_REVOKED: ExitCode.AUTH_FAILED,
  ERR_UPDATE_VERIFY: ExitCode.SOFTWARE,
  ERR_UPDATE_DOWNLOAD: ExitCode.UNAVAILABLE,
  ERR_UPDATE_DISK_SPACE: ExitCode.CANT_CREATE,
  ERR_UPDATE_POLICY: ExitCode.SOFTWARE,
  ERR_UPDATE_STAGE: ExitCode.CANT_CREATE,
  ERR_UPDATE_HANDOFF: ExitCode.SOFTWARE,
  ERR_UPDATE_BLOCKED: ExitCode.SOFTWARE,
  ERR_UPDATE_RECOVERING: ExitCode.BUSY_UPDATING,
  ERR_UPDATE_OLD_AGENT_STAYED: ExitCode.UPDATE_ABORTED,
  ERR_UPDATE_SWAP: ExitCode.UPDATE_ROLLED_BACK,
  ERR_UPDATE_LAUNCH: ExitCode.UPDATE_ROLLED_BACK,
  ERR_UPDATE_UNHEALTHY: ExitCode.UPDATE_ROLLED_BACK,
  ERR_UPDATE_INTERRUPTED: ExitCode.UPDATE_ROLLED_BACK,
  ERR_REPORT_INVALID: ExitCode.SOFTWARE,
  ERR_REPORT_BUFFER_IO: ExitCode.IO,
  ERR_REPORT_BUFFER_DAMAGED: ExitCode.DATA,
  ERR_REPORT_DROPPED: ExitCode.UNAVAILABLE,
  ERR_REPORT_REFUSED: ExitCode.DATA,
  ERR_REPORT_SEND_FAILED: ExitCode.UNAVAILABLE,
  ERR_AUTOSTART: ExitCode.IO,
  ERR_INSTALL_ENTRY: ExitCode.IO,
  ERR_DIAGNOSTICS_BAD_CALL: ExitCode.DATA,
  ERR_DIAGNOSTICS_NO_AGENT: ExitCode.NOT_RUNNING,
};
