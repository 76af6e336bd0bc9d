import fs from 'node:fs';
import type { z } from 'zod';
import { errnoCode } from './errors.js';

/**
 * The files of one JSON value per line that processes append to (the error report buffer, the
 * updater's journal, the server's report store). A crash mid-append leaves a torn last line, and a
 * damaged file may hold lines that are not what the reader expects: both are skipped, and said.
 */
export interface JsonLines<T> {
  readonly entries: T[];
  /** 1-based numbers of the lines that were skipped (not JSON, or not valid), the torn tail included. */
  readonly skipped: number[];
  /** The text after the last newline was not empty: an append was cut short. */
  readonly tornTail: boolean;
}

/** Parses every complete line with `parse` (null: skip it); an unterminated last line is the torn tail. */
export function parseJsonLines<T>(text: string, parse: (line: string) => T | null): JsonLines<T> {
  const lines = text.split('\n');
  const tail = lines.pop() ?? '';
  const entries: T[] = [];
  const skipped: number[] = [];
  lines.forEach((line, index) => {
    if (line === '') return;
    const entry = parse(line);
    if (entry === null) skipped.push(index + 1);
    else entries.push(entry);
  });
  if (tail !== '') skipped.push(lines.length + 1);
  return { entries, skipped, tornTail: tail !== '' };
}

/** The file's lines; a missing file has none. Other read errors are thrown (the caller knows what they mean). */
export function readJsonLines<T>(file: string, parse: (line: string) => T | null): JsonLines<T> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { entries: [], skipped: [], tornTail: false };
    throw error;
  }
  return parseJsonLines(text, parse);
}

/** A line parser that accepts what `schema` accepts (the most common `parse` argument). */
export function jsonLineOf<S extends z.ZodType>(schema: S): (line: string) => z.infer<S> | null {
  return (line) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return null;
    }
    const parsed = schema.safeParse(value);
    return parsed.success ? parsed.data : null;
  };
}
