import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ChunkLocation } from './local-chunks.js';

/** Before each chunk in a pack: its SHA-256 (32 bytes) and its length (uint32, big-endian). */
const HEADER_BYTES = 36;

/**
 * `updates/chunks/`: the verified chunks of a download under way, so that an interrupted download
 * (a dropped connection, a shutdown, SIGKILL) never fetches a verified chunk again. Chunks are
 * appended to a pack file, each behind a header naming it, those of one network read in one write:
 * a file created per chunk would cost more than its download. Each download session writes a pack
 * of its own, so the torn tail of an earlier one (a crash mid-write) is never written over, and a
 * reader stops at it. Nothing is fsynced: staging hashes every chunk again before it uses one, and
 * deletes a pack found damaged.
 */
export class ChunkStore {
  readonly #dir: string;
  #pack: number | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Appends verified chunks, each behind its header, in one write. */
  append(chunks: ReadonlyArray<{ sha256: string; raw: Buffer }>): void {
    const parts: Buffer[] = [];
    for (const { sha256, raw } of chunks) {
      const header = Buffer.alloc(HEADER_BYTES);
      header.write(sha256, 0, 32, 'hex');
      header.writeUInt32BE(raw.length, 32);
      parts.push(header, raw);
    }
    fs.writeSync(this.#open(), Buffer.concat(parts));
  }

  close(): void {
    if (this.#pack === undefined) return;
    fs.closeSync(this.#pack);
    this.#pack = undefined;
  }

  #open(): number {
    if (this.#pack !== undefined) return this.#pack;
    fs.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    this.#pack = fs.openSync(path.join(this.#dir, `pack-${Date.now()}-${randomBytes(3).toString('hex')}`), 'wx', 0o600);
    return this.#pack;
  }

  /** Every chunk the store's packs hold whole (a torn tail is left out). */
  static read(dir: string): Map<string, ChunkLocation> {
    const chunks = new Map<string, ChunkLocation>();
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return chunks;
    }
    const header = Buffer.alloc(HEADER_BYTES);
    for (const name of names.filter((n) => ChunkStore.isPack(dir, path.join(dir, n)))) {
      const file = path.join(dir, name);
      const fd = fs.openSync(file, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        for (let at = 0; at + HEADER_BYTES <= size; ) {
          fs.readSync(fd, header, 0, HEADER_BYTES, at);
          const length = header.readUInt32BE(32);
          if (at + HEADER_BYTES + length > size) break;
          chunks.set(header.toString('hex', 0, 32), { file, offset: at + HEADER_BYTES, size: length });
          at += HEADER_BYTES + length;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
    return chunks;
  }

  /** Whether `file` is one of the store's packs (staging deletes a pack it finds damaged). */
  static isPack(dir: string, file: string): boolean {
    return path.dirname(file) === dir && /^pack-\d+-[0-9a-f]+$/.test(path.basename(file));
  }
}
