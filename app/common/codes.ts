/**
 * Every stable code of the product, in one place: errors (`ERR_*`) and events the backend must hear of
 * (`EVT_*`). They appear in logs, in `outpost status`, in error reports and in the updater's journal
 * and reports, so they are part of the product's outside: add new ones, never rename or reuse one.
 * Each error names one situation a user or an admin can act on.
 */
export const ErrorCode = {
  // The command line and its environment
  USAGE: 'ERR_USAGE',
  NOT_AVAILABLE: 'ERR_NOT_AVAILABLE',
  INTERNAL: 'ERR_INTERNAL',
  // The single-instance lock
  LOCK_HELD: 'ERR_LOCK_HELD',
  LOCK_COMPROMISED: 'ERR_LOCK_COMPROMISED',
  LOCK_IO: 'ERR_LOCK_IO',
  // Config and storage
  CONFIG_UNREADABLE: 'ERR_CONFIG_UNREADABLE',
  CONFIG_PARSE: 'ERR_CONFIG_PARSE',
  CONFIG_INVALID: 'ERR_CONFIG_INVALID',
  CONFIG_TOO_NEW: 'ERR_CONFIG_TOO_NEW',
  STORAGE_UNSAFE: 'ERR_STORAGE_UNSAFE',
  STORAGE_CREATE: 'ERR_STORAGE_CREATE',
  PLATFORM_CALL: 'ERR_PLATFORM_CALL',
  // Local IPC (`outpost status`, `--force`)
  IPC_ENDPOINT_BUSY: 'ERR_IPC_ENDPOINT_BUSY',
  IPC_NOT_RUNNING: 'ERR_IPC_NOT_RUNNING',
  IPC_AUTH: 'ERR_IPC_AUTH',
  IPC_TIMEOUT: 'ERR_IPC_TIMEOUT',
  IPC_PROTOCOL: 'ERR_IPC_PROTOCOL',
  IPC_SECRET: 'ERR_IPC_SECRET',
  BUSY_UPDATING: 'ERR_BUSY_UPDATING',
  FORCE_TIMEOUT: 'ERR_FORCE_TIMEOUT',
  /** `--quit`: the agent agreed to shut down but was still running when the wait ended. */
  QUIT_TIMEOUT: 'ERR_QUIT_TIMEOUT',
  // The backend's authentication of agents (app/common/enrollment.ts)
  /** The enrollment secret or the agent's token cannot be read or is damaged, or the backend refused the enrollment secret: an administrator must set the right one. */
  BACKEND_CREDENTIAL: 'ERR_BACKEND_CREDENTIAL',
  /** An operator revoked this agent at the backend: it sends nothing more and keeps no push channel until it is restarted. */
  AGENT_REVOKED: 'ERR_AGENT_REVOKED',
  // The update pipeline, in the agent
  UPDATE_VERIFY: 'ERR_UPDATE_VERIFY',
  UPDATE_DOWNLOAD: 'ERR_UPDATE_DOWNLOAD',
  UPDATE_DISK_SPACE: 'ERR_UPDATE_DISK_SPACE',
  UPDATE_POLICY: 'ERR_UPDATE_POLICY',
  UPDATE_STAGE: 'ERR_UPDATE_STAGE',
  /** The updater could not be started, or never confirmed that it runs: the agent stays. */
  UPDATE_HANDOFF: 'ERR_UPDATE_HANDOFF',
  UPDATE_BLOCKED: 'ERR_UPDATE_BLOCKED',
  UPDATE_RECOVERING: 'ERR_UPDATE_RECOVERING',
  // The standalone updater (queued as reports for the agent to send)
  /** The updater ran, but the old agent never exited: nothing was touched. */
  UPDATE_OLD_AGENT_STAYED: 'ERR_UPDATE_OLD_AGENT_STAYED',
  UPDATE_SWAP: 'ERR_UPDATE_SWAP',
  UPDATE_LAUNCH: 'ERR_UPDATE_LAUNCH',
  UPDATE_UNHEALTHY: 'ERR_UPDATE_UNHEALTHY',
  UPDATE_INTERRUPTED: 'ERR_UPDATE_INTERRUPTED',
  // Start at login
  /** The autostart entry (a file, a registry value) could not be read, written or removed. */
  AUTOSTART: 'ERR_AUTOSTART',
  // The installation's entry in the OS's list of programs
  /** Windows: the Uninstall entry (Apps & features) could not be read or given the new version after an update, which stays committed. */
  INSTALL_ENTRY: 'ERR_INSTALL_ENTRY',
  // The diagnostics page and its carriers
  /** A call from the page that is not one (malformed, unknown method, too large): refused, nothing done. */
  DIAGNOSTICS_BAD_CALL: 'ERR_DIAGNOSTICS_BAD_CALL',
  /** The diagnostics page reached its carrier, but not the agent (not running, or not answering). */
  DIAGNOSTICS_NO_AGENT: 'ERR_DIAGNOSTICS_NO_AGENT',
  // Error reports
  /** A report that fails its own schema: a bug in the code that reported it. Logged, never sent. */
  REPORT_INVALID: 'ERR_REPORT_INVALID',
  /** The buffer file (or its drop counter) could not be read or written. */
  REPORT_BUFFER_IO: 'ERR_REPORT_BUFFER_IO',
  /** Lines of the buffer that are not reports (torn by a kill, or damaged): skipped. */
  REPORT_BUFFER_DAMAGED: 'ERR_REPORT_BUFFER_DAMAGED',
  /** The buffer was full: the oldest reports were dropped (counted, and told to the backend later). */
  REPORT_DROPPED: 'ERR_REPORT_DROPPED',
  /** The backend refused a report for good (HTTP 4xx): dropped. */
  REPORT_REFUSED: 'ERR_REPORT_REFUSED',
  /** The backend could not be reached or did not accept the report now: tried again later. */
  REPORT_SEND_FAILED: 'ERR_REPORT_SEND_FAILED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const EventCode = {
  /** The new version of an update proved healthy and the update was committed. */
  UPDATE_SUCCEEDED: 'EVT_UPDATE_SUCCEEDED',
} as const;
export type EventCode = (typeof EventCode)[keyof typeof EventCode];

/** What an error report may carry as its code. */
export type ReportCode = ErrorCode | EventCode;
