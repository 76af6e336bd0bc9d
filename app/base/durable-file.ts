import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { errnoCode } from './errors.js';
import { tryParseJson } from './jsonl.js';

const TEMP_MARK = '.tmp-';

/**
 * Replaces `file` with `data` so that a reader (or the next start after a crash) sees either the old
 * content or the new, never a mix: write a temp file beside it, fsync it, rename it over the target,
 * then fsync the folder so the rename itself survives a power cut.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const temp = `${file}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(temp, 'wx', mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw error;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
  fsyncDirectory(path.dirname(file));
}

/**
 * Appends one line and fsyncs it: after a crash the line is on disk whole, or it is the torn tail
 * that readers of such files skip. A new file's name lives in its folder, so that is fsynced too, once.
 */
export function appendLineDurable(file: string, line: string): void {
  const created = !fs.existsSync(file);
  const fd = fs.openSync(file, 'a', 0o600);
  try {
    fs.writeFileSync(fd, line);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  if (created) fsyncDirectory(path.dirname(file));
}

/** Removes temp files that a crash in the middle of `writeFileAtomic(file)` left behind. */
export function removeStaleTempFiles(file: string): string[] {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}${TEMP_MARK}`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed = names.filter((name) => name.startsWith(prefix));
  for (const name of removed) fs.rmSync(path.join(dir, name), { force: true });
  return removed;
}

export function fsyncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (error) {
    // Windows cannot open a folder as a file; NTFS journals the rename itself.
    if (['EISDIR', 'EPERM', 'EACCES'].includes(errnoCode(error) ?? '')) return;
    throw error;
  }
  try {
    fs.fsyncSync(fd);
  } catch (error) {
    if (!['EISDIR', 'EPERM', 'EINVAL', 'EBADF'].includes(errnoCode(error) ?? '')) throw error;
  } finally {
    fs.closeSync(fd);
  }
}

/** A file's text, or null when it does not exist; any other failure is thrown (the caller says what it means). */
export function readTextIfExists(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw error;
  }
}

/** A small file's text, or '' when it cannot be read (missing, or removed while we look). */
export function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** A small JSON record, or null when it is missing or not what its schema says (a half-written or foreign file). */
export function readRecord<S extends z.ZodType>(file: string, schema: S): z.infer<S> | null {
  const parsed = schema.safeParse(tryParseJson(readText(file)));
  return parsed.success ? parsed.data : null;
}

/** Replaces the record atomically; `schema` checks it first, so a writer cannot leave what its readers refuse. */
export function writeRecord<S extends z.ZodType>(file: string, schema: S, value: z.input<S>, pretty = false): void {
  writeFileAtomic(file, JSON.stringify(schema.parse(value), null, pretty ? 2 : undefined));
}
