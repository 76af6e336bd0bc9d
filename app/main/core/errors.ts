import { ExitCode } from '../../common/exit-codes.js';

/**
 * Stable error codes. Each names one situation a user or an admin can act on; the message that goes
 * with it is a sentence saying what happened and what to do. Codes are part of the product's outside
 * (logs, error reports): add new ones, never rename one.
 */
export const ErrorCode = {
  USAGE: 'ERR_USAGE',
  NOT_AVAILABLE: 'ERR_NOT_AVAILABLE',
  LOCK_HELD: 'ERR_LOCK_HELD',
  LOCK_COMPROMISED: 'ERR_LOCK_COMPROMISED',
  LOCK_IO: 'ERR_LOCK_IO',
  CONFIG_UNREADABLE: 'ERR_CONFIG_UNREADABLE',
  CONFIG_PARSE: 'ERR_CONFIG_PARSE',
  CONFIG_INVALID: 'ERR_CONFIG_INVALID',
  CONFIG_TOO_NEW: 'ERR_CONFIG_TOO_NEW',
  STORAGE_UNSAFE: 'ERR_STORAGE_UNSAFE',
  STORAGE_CREATE: 'ERR_STORAGE_CREATE',
  PLATFORM_CALL: 'ERR_PLATFORM_CALL',
  IPC_ENDPOINT_BUSY: 'ERR_IPC_ENDPOINT_BUSY',
  IPC_NOT_RUNNING: 'ERR_IPC_NOT_RUNNING',
  IPC_AUTH: 'ERR_IPC_AUTH',
  IPC_TIMEOUT: 'ERR_IPC_TIMEOUT',
  IPC_PROTOCOL: 'ERR_IPC_PROTOCOL',
  BUSY_UPDATING: 'ERR_BUSY_UPDATING',
  FORCE_TIMEOUT: 'ERR_FORCE_TIMEOUT',
  IPC_SECRET: 'ERR_IPC_SECRET',
  UPDATE_VERIFY: 'ERR_UPDATE_VERIFY',
  UPDATE_DOWNLOAD: 'ERR_UPDATE_DOWNLOAD',
  UPDATE_DISK_SPACE: 'ERR_UPDATE_DISK_SPACE',
  UPDATE_POLICY: 'ERR_UPDATE_POLICY',
  UPDATE_STAGE: 'ERR_UPDATE_STAGE',
  UPDATE_HANDOFF: 'ERR_UPDATE_HANDOFF',
  UPDATE_BLOCKED: 'ERR_UPDATE_BLOCKED',
  UPDATE_RECOVERING: 'ERR_UPDATE_RECOVERING',
  INTERNAL: 'ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const EXIT_CODE_OF: Record<ErrorCode, ExitCode> = {
  ERR_USAGE: ExitCode.USAGE,
  ERR_NOT_AVAILABLE: ExitCode.UNAVAILABLE,
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
  ERR_BUSY_UPDATING: ExitCode.BUSY_UPDATING,
  ERR_FORCE_TIMEOUT: ExitCode.TIMED_OUT,
  ERR_IPC_SECRET: ExitCode.CONFIG,
  ERR_UPDATE_VERIFY: ExitCode.SOFTWARE,
  ERR_UPDATE_DOWNLOAD: ExitCode.UNAVAILABLE,
  ERR_UPDATE_DISK_SPACE: ExitCode.CANT_CREATE,
  ERR_UPDATE_POLICY: ExitCode.SOFTWARE,
  ERR_UPDATE_STAGE: ExitCode.CANT_CREATE,
  ERR_UPDATE_HANDOFF: ExitCode.SOFTWARE,
  ERR_UPDATE_BLOCKED: ExitCode.SOFTWARE,
  ERR_UPDATE_RECOVERING: ExitCode.BUSY_UPDATING,
  ERR_INTERNAL: ExitCode.SOFTWARE,
};

export class OutpostError extends Error {
  readonly code: ErrorCode;
  /** Machine-readable facts about the failure (never secrets): logged and, later, reported. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OutpostError';
    this.code = code;
    this.details = options.details ?? {};
  }

  get exitCode(): ExitCode {
    return EXIT_CODE_OF[this.code];
  }
}

export function isOutpostError(error: unknown, code?: ErrorCode): error is OutpostError {
  return error instanceof OutpostError && (code === undefined || error.code === code);
}

/** The errno-style code of a Node system error (`ENOENT`, `EEXIST`...), or undefined. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

/** What file-system errors mean, in words: a user told only "EPERM" cannot tell what to fix. */
const FS_ERROR_WORDS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted whatever the permissions say, as for an immutable file or folder',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a part of the path is a file, not a folder',
  ENOENT: 'a part of the path does not exist',
  EISDIR: 'it is a folder, not a file',
  EEXIST: 'it already exists',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is used up',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many symbolic links in the path',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  EIO: 'an input/output error (a failing disk?)',
};

/** A file-system error as "what it means (ERRNO)", e.g. `permission denied (EACCES)`; other errors by their message. */
export function describeFsError(error: unknown): string {
  const code = errnoCode(error);
  if (code === undefined) return describeError(error);
  const words = FS_ERROR_WORDS[code];
  return words ? `${words} (${code})` : code;
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
