import fs from 'node:fs';
import type { z } from 'zod';
import { errnoCode } from './errors.js';

/**
 * The files of one JSON value per line that processes append to (the agent's error report buffer,
 * the updater's journal, the server's report store). A crash mid-append leaves a torn last line (no
 * newline after it), and a damaged file may hold lines that are not what the reader expects: readers
 * skip both and say so. One splitter serves the whole-file readers and the streaming one.
 */
export interface Line {
  /** The line's text without its newline; undefined when it is longer than the reader's limit (its bytes are not kept). */
  readonly text: string | undefined;
  /** The byte offset it starts at. */
  readonly start: number;
  /** 1-based. */
  readonly number: number;
  /** False for the text after the last newline: an append cut short. */
  readonly terminated: boolean;
}

/** Splits bytes into lines as they arrive; a line over `maxLineBytes` is reported without its bytes. */
export class LineSplitter {
  readonly #maxLineBytes: number;
  #parts: Buffer[] = [];
  #length = 0;
  #start = 0;
  #offset = 0;
  #number = 0;

  constructor(maxLineBytes = Number.POSITIVE_INFINITY) {
    this.#maxLineBytes = maxLineBytes;
  }

  push(chunk: Buffer): Line[] {
    const lines: Line[] = [];
    let from = 0;
    for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, from)) {
      this.#add(chunk.subarray(from, end));
      lines.push(this.#take(true));
      from = end + 1;
      this.#start = this.#offset + from;
    }
    this.#add(chunk.subarray(from));
    this.#offset += chunk.length;
    return lines;
  }

  /** The torn tail, if the bytes did not end with a newline. */
  end(): Line[] {
    return this.#length > 0 ? [this.#take(false)] : [];
  }

  #add(part: Buffer): void {
    this.#length += part.length;
    if (this.#length <= this.#maxLineBytes) this.#parts.push(part);
  }

  #take(terminated: boolean): Line {
    const text = this.#length > this.#maxLineBytes ? undefined : Buffer.concat(this.#parts, this.#length).toString('utf8');
    this.#parts = [];
    this.#length = 0;
    return { text, start: this.#start, number: ++this.#number, terminated };
  }
}

export interface JsonLines<T> {
  readonly entries: T[];
  /** 1-based numbers of the lines that were skipped (not JSON, or not valid), the torn tail included. */
  readonly skipped: number[];
  /** The text after the last newline was not empty: an append was cut short. */
  readonly tornTail: boolean;
}

/** Parses every complete line with `parse` (null: skip it); blank lines are ignored; an unterminated tail is skipped. */
export function parseJsonLines<T>(bytes: Buffer, parse: (line: string) => T | null): JsonLines<T> {
  const splitter = new LineSplitter();
  const entries: T[] = [];
  const skipped: number[] = [];
  let tornTail = false;
  for (const line of [...splitter.push(bytes), ...splitter.end()]) {
    if (!line.terminated) {
      tornTail = true;
      skipped.push(line.number);
      continue;
    }
    if (line.text === undefined || line.text.trim() === '') continue;
    const entry = parse(line.text);
    if (entry === null) skipped.push(line.number);
    else entries.push(entry);
  }
  return { entries, skipped, tornTail };
}

/** The file's lines; a missing file has none. Other read errors are thrown (the caller knows what they mean). */
export function readJsonLines<T>(file: string, parse: (line: string) => T | null): JsonLines<T> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { entries: [], skipped: [], tornTail: false };
    throw error;
  }
  return parseJsonLines(bytes, parse);
}

/**
 * The non-blank lines of a large file, streamed, each with its byte offset and parsed value: undefined
 * for a line that is not JSON (the torn tail among them) or is longer than `maxLineBytes`.
 */
export async function* streamJsonLines(file: string, maxLineBytes: number): AsyncGenerator<{ value: unknown; start: number }> {
  const splitter = new LineSplitter(maxLineBytes);
  const parsed = (line: Line) => (line.text?.trim() === '' ? null : { value: line.text === undefined ? undefined : tryParseJson(line.text), start: line.start });
  for await (const chunk of fs.createReadStream(file)) {
    for (const line of splitter.push(chunk as Buffer)) {
      const value = parsed(line);
      if (value) yield value;
    }
  }
  for (const line of splitter.end()) {
    const value = parsed(line);
    if (value) yield value;
  }
}

/** The JSON value of a text, or undefined when it is not JSON. */
export function tryParseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A line parser that accepts what `schema` accepts (the most common `parse` argument). */
export function jsonLineOf<S extends z.ZodType>(schema: S): (line: string) => z.infer<S> | null {
  return (line) => {
    const parsed = schema.safeParse(tryParseJson(line));
    return parsed.success ? parsed.data : null;
  };
}
