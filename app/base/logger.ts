import fs from 'node:fs';
import path from 'node:path';
import electronLog from 'electron-log/node';
import { describeFsError, ErrorCode, errnoCode, OutpostError } from './errors.js';
import { redactSecrets } from './redact.js';

import { LOG_LEVELS, type LogLevel } from '../common/log-levels.js';

export { LOG_LEVELS, type LogLevel };

export type LogFields = Readonly<Record<string, unknown>>;

/** What every piece of the agent logs through. Pieces get one in their constructor; there is no global. */
export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  /** A logger whose lines carry `[scope]`, e.g. `[lock]`. */
  child(scope: string): Logger;
}

/** The root logger, owned by the agent: the only one that can change the level. */
export interface RootLogger extends Logger {
  readonly file: string;
  setLevel(level: LogLevel): void;
}

export interface FileLoggerOptions {
  dir: string;
  level: LogLevel;
  /** Also print lines at or above this level to stderr (the foreground `outpost` command), or not. */
  stderrLevel: LogLevel | false;
  /** Rotate when the file passes this size. */
  maxSizeBytes?: number;
  /** How many rotated files to keep (outpost.1.log is the newest). */
  keepFiles?: number;
}

export const LOG_FILE_NAME = 'outpost.log';

/** One line of the log file, as the file transport below writes it: `[ISO date] [level] text` (groups 1 to 3). */
export const LOG_LINE = /^\[([^\]]+)\] \[(\w+)\] (.*)$/;

/**
 * electron-log's Node flavour writes the file under plain Node and under Electron alike, which is
 * why core uses it and not `electron-log/main` (which needs Electron). Writes are synchronous, so a
 * line logged just before a crash is on disk and there is never a buffer left to flush at shutdown.
 */
export function createFileLogger(options: FileLoggerOptions): RootLogger {
  const file = path.join(options.dir, LOG_FILE_NAME);
  try {
    fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    // electron-log, given a file it cannot open, prints a stack trace and drops every line: an agent
    // must not run without its log, so the file is opened once here, where the failure can be named.
    fs.closeSync(fs.openSync(file, 'a', 0o600));
  } catch (error) {
    // mkdir -p says EEXIST for a file where the folder should be.
    const problem = errnoCode(error) === 'EEXIST' ? `${options.dir} is a file, not a folder` : describeFsError(error);
    throw new OutpostError(ErrorCode.STORAGE_CREATE, `Cannot write the log file ${file}: ${problem}. Make ${options.dir} a folder this user can write.`, {
      cause: error,
      details: { file, errno: errnoCode(error) },
    });
  }
  const keepFiles = options.keepFiles ?? 3;
  const base = electronLog.create({ logId: `outpost-${process.pid}-${Math.random().toString(36).slice(2)}` });

  base.transports.file.resolvePathFn = () => file;
  // electron-log looks the app name up in a package.json above the working folder, and without one
  // (an agent started from / by a service manager) drops every line silently. The name is ours.
  base.transports.file.setAppName('outpost');
  base.transports.file.maxSize = options.maxSizeBytes ?? 5 * 1024 * 1024;
  base.transports.file.writeOptions = { flag: 'a', mode: 0o600, encoding: 'utf8' };
  base.transports.file.sync = true;
  // ISO 8601 with the zone: admins compare logs from machines in different time zones.
  // LOG_LINE reads this format back (the diagnostics page's log tail).
  base.transports.file.format = ({ message, data }) => [`[${message.date.toISOString()}] [${message.level}] ${data.join(' ')}`];
  base.transports.file.archiveLogFn = (current) => rotate(current.path, keepFiles);
  base.transports.file.level = options.level;
  base.transports.console.level = false;

  const stderrLevel = options.stderrLevel;
  const write: Write = (level, scope, message, fields) => {
    // The one place log lines are made: no credential reaches the file or stderr, whoever wrote the line.
    const text = lineText(scope, message, fields);
    base[level](text);
    if (stderrLevel !== false && rank(level) <= rank(stderrLevel)) {
      process.stderr.write(`outpost: ${text}\n`);
    }
  };

  return {
    ...scopedLogger(write, undefined),
    file,
    setLevel(level) {
      base.transports.file.level = level;
    },
  };
}

/**
 * A logger for a short-lived command that keeps no log file of its own (`outpost diagnostics`): lines
 * at or above `level` go to stderr, through the same redaction.
 */
export function createStderrLogger(level: LogLevel): Logger {
  return scopedLogger((lineLevel, scope, message, fields) => {
    if (rank(lineLevel) <= rank(level)) process.stderr.write(`outpost: ${lineText(scope, message, fields)}\n`);
  }, undefined);
}

type Write = (level: LogLevel, scope: string | undefined, message: string, fields?: LogFields) => void;

function scopedLogger(write: Write, scope: string | undefined): Logger {
  return {
    error: (m, f) => write('error', scope, m, f),
    warn: (m, f) => write('warn', scope, m, f),
    info: (m, f) => write('info', scope, m, f),
    debug: (m, f) => write('debug', scope, m, f),
    child: (s) => scopedLogger(write, scope ? `${scope}.${s}` : s),
  };
}

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

function rank(level: LogLevel): number {
  return LOG_LEVELS.indexOf(level);
}

/** outpost.log -> outpost.1.log -> outpost.2.log ..., the oldest dropped. */
function rotate(file: string, keepFiles: number): void {
  const { dir, name, ext } = path.parse(file);
  const numbered = (n: number) => path.join(dir, `${name}.${n}${ext}`);
  fs.rmSync(numbered(keepFiles), { force: true });
  for (let n = keepFiles - 1; n >= 1; n--) {
    if (fs.existsSync(numbered(n))) fs.renameSync(numbered(n), numbered(n + 1));
  }
  fs.renameSync(file, numbered(1));
}

/** A line's text after its date and level; no credential reaches a log or stderr, whoever wrote the line. */
function lineText(scope: string | undefined, message: string, fields: LogFields | undefined): string {
  return redactSecrets(`${scope ? `[${scope}] ` : ''}${message}${formatFields(fields)}`);
}

function formatFields(fields: LogFields | undefined): string {
  if (!fields) return '';
  const parts = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? JSON.stringify(value) : safeJson(value)}`);
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
