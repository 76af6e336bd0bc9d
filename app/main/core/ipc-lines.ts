import type { Socket } from 'node:net';
import type { z } from 'zod';

/**
 * Newline-delimited JSON over a socket, bounded: a line longer than `maxBytes` is an error, never a
 * growing buffer, so a peer that sends without end costs at most `maxBytes` of memory.
 */
class LineReader {
  #buffer: Buffer = Buffer.alloc(0);
  readonly #maxBytes: number;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Adds a chunk and returns the complete lines in it; throws `LineTooLong` past the limit. */
  push(chunk: Buffer): string[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const lines: string[] = [];
    for (let newline = this.#buffer.indexOf(0x0a); newline >= 0; newline = this.#buffer.indexOf(0x0a)) {
      if (newline + 1 > this.#maxBytes) throw new LineTooLong(this.#maxBytes);
      lines.push(this.#buffer.subarray(0, newline).toString('utf8'));
      this.#buffer = this.#buffer.subarray(newline + 1);
    }
    if (this.#buffer.length >= this.#maxBytes) throw new LineTooLong(this.#maxBytes);
    return lines;
  }
}

class LineTooLong extends Error {
  constructor(maxBytes: number) {
    super(`message longer than ${maxBytes} bytes`);
  }
}

/**
 * Feeds each complete line of the socket to `onLine` for as long as it returns true; a line longer
 * than `maxBytes` calls `onTooLong` instead, and nothing more is read.
 */
export function onLines(socket: Socket, maxBytes: number, onLine: (line: string) => boolean, onTooLong: () => void): void {
  const reader = new LineReader(maxBytes);
  let reading = true;
  socket.on('data', (chunk: Buffer) => {
    if (!reading) return;
    let lines: string[];
    try {
      lines = reader.push(chunk);
    } catch (error) {
      if (!(error instanceof LineTooLong)) throw error;
      reading = false;
      onTooLong();
      return;
    }
    for (const line of lines) {
      reading = onLine(line);
      if (!reading) return;
    }
  });
}

/** Parses one line against a schema; returns the problem in words instead of throwing. */
export function parseLine<S extends z.ZodType>(schema: S, line: string): { ok: true; value: z.infer<S> } | { ok: false; problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  return { ok: false, problem: `${issue?.path.join('.') || 'message'}: ${issue?.message ?? 'invalid'}` };
}

export function writeLine(socket: Socket, message: object): void {
  if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
}
