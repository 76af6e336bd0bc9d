import { ErrorCode } from '../common/codes.js';
import { EXIT_CODE_OF, type ExitCode } from '../common/exit-codes.js';
import { redactSecrets } from './redact.js';

export { ErrorCode };

export class OutpostError extends Error {
  readonly code: ErrorCode;
  /** Machine-readable facts about the failure (never secrets): logged and, later, reported. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    // Messages are where URLs from config end up: credentials are taken out once, here.
    super(redactSecrets(message), options.cause === undefined ? undefined : { cause: options.cause });
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

/** An error's message for a log line or a new message, without credentials. */
export function describeError(error: unknown): string {
  return redactSecrets(error instanceof Error ? error.message : String(error));
}
