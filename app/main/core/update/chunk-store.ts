import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ChunkLocation } from './local-chunks.js';

/** One line of a pack's index per chunk: its SHA-256, where it starts in the pack, its length. */
const INDEX_LINE = /^([0-9a-f]{64}) (\d+) (\d+)$/;

/**
 * `updates/chunks/`: the verified chunks of a download under way, so that an interrupted download
 * (a dropped connection, a shutdown, SIGKILL) never fetches a verified chunk again. Chunks are
 * appended to a pack file, and a line naming each is appended to the pack's index after its bytes:
 * two writes per chunk rather than a file created per chunk, which would cost more than the download.
 * Each download session writes packs of its own, so the torn tail of an earlier one is never written
 * over. Nothing is fsynced: staging hashes every chunk again before it uses one, and a pack found
 * damaged is deleted with its index.
 */
export class ChunkStore {
  readonly #dir: string;
  #pack: { readonly data: number; readonly index: number; readonly file: string; size: number } | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  append(sha256: string, raw: Buffer): void {
    const pack = this.#open();
    fs.writeSync(pack.data, raw);
    fs.writeSync(pack.index, `${sha256} ${pack.size} ${raw.length}\n`);
    pack.size += raw.length;
  }

  close(): void {
    if (!this.#pack) return;
    fs.closeSync(this.#pack.data);
    fs.closeSync(this.#pack.index);
    this.#pack = undefined;
  }

  #open() {
    if (this.#pack) return this.#pack;
    fs.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.#dir, `pack-${Date.now()}-${randomBytes(3).toString('hex')}`);
    this.#pack = { data: fs.openSync(file, 'wx', 0o600), index: fs.openSync(`${file}.idx`, 'wx', 0o600), file, size: 0 };
    return this.#pack;
  }

  /** Every chunk the store's packs hold, as far as their indexes say and their data reaches (a torn tail is left out). */
  static read(dir: string): Map<string, ChunkLocation> {
    const chunks = new Map<string, ChunkLocation>();
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return chunks;
    }
    for (const name of names.filter((n) => /^pack-[\w-]+\.idx$/.test(n))) {
      const file = path.join(dir, name.slice(0, -'.idx'.length));
      const size = fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
      for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
        const match = INDEX_LINE.exec(line);
        if (!match) continue;
        const offset = Number(match[2]);
        const length = Number(match[3]);
        if (offset + length <= size) chunks.set(match[1] as string, { file, offset, size: length });
      }
    }
    return chunks;
  }

  /** Whether `file` is one of this store's packs (staging deletes a pack it finds damaged). */
  static isPack(dir: string, file: string): boolean {
    return path.dirname(file) === dir && /^pack-[\w-]+$/.test(path.basename(file));
  }
}
