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

/** An error's message for a log line or a new message, without credentials. */
export function describeError(error: unknown): string {
  return redactSecrets(error instanceof Error ? error.message : String(error));
}
