import fs from 'node:fs';
import type { LogCursor, LogLine } from '../../../common/diagnostics.js';
import { isLogLevel, LOG_LINE } from '../../../base/logger.js';

export interface LogTail {
  readonly cursor: LogCursor;
  readonly lines: LogLine[];
  /** Lines were skipped: the first read starts inside the file, or more was written than one read carries. */
  readonly truncated: boolean;
}


/**
 * The log as the diagnostics page follows it: the last `maxLines` lines on the first read (or after
 * the file rotated), then whatever was appended since `after`, never more than `maxBytes` per read
 * (a burst is cut to its newest part, and says so). Only complete lines are returned: a line being
 * written is read whole the next time.
 */
export function readLogTail(file: string, after: LogCursor | null, limits: { maxBytes: number; maxLines: number }): LogTail {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return { cursor: { file: 'none', offset: 0 }, lines: [], truncated: false };
  }
  try {
    const stat = fs.fstatSync(fd);
    const id = `${stat.dev}:${stat.ino}`;
    const following = after !== null && after.file === id && after.offset <= stat.size;
    const from = following ? Math.max(after.offset, stat.size - limits.maxBytes) : Math.max(0, stat.size - limits.maxBytes);
    const bytes = Buffer.alloc(stat.size - from);
    const read = bytes.length > 0 ? fs.readSync(fd, bytes, 0, bytes.length, from) : 0;
    let text = bytes.subarray(0, read).toString('utf8');
    let skipped = following ? from > after.offset : from > 0;
    // Starting inside the file, the first line may be a part: it is dropped, unless the read starts at a line's beginning.
    let start = from;
    if (from > 0 && !(following && from === after.offset)) {
      const newline = text.indexOf('\n');
      start += newline < 0 ? text.length : Buffer.byteLength(text.slice(0, newline + 1));
      text = newline < 0 ? '' : text.slice(newline + 1);
    }
    const end = text.lastIndexOf('\n');
    const complete = end < 0 ? '' : text.slice(0, end + 1);
    let lines = parseLogLines(complete);
    if (!following && lines.length > limits.maxLines) {
      lines = lines.slice(-limits.maxLines);
      skipped = true;
    }
    return { cursor: { file: id, offset: start + Buffer.byteLength(complete) }, lines, truncated: skipped };
  } finally {
    fs.closeSync(fd);
  }
}

/** Lines of the log's format; a line that is not one (a stack's frames) belongs to the line before it. */
export function parseLogLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    const match = LOG_LINE.exec(raw);
    const level = match?.[2];
    if (match && isLogLevel(level)) {
      lines.push({ at: match[1] ?? '', level, text: match[3] ?? '' });
      continue;
    }
    const previous = lines.at(-1);
    if (previous) lines[lines.length - 1] = { ...previous, text: `${previous.text}\n${raw}` };
    else lines.push({ at: '', level: 'info', text: raw });
  }
  return lines;
}
