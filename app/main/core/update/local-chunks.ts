import fs from 'node:fs';
import path from 'node:path';
import { chunkFile, splitPages } from '../../../base/chunking.js';
import type { Chunking } from '../../../common/release.js';
import { ChunkStore } from './chunk-store.js';

/** Where a chunk's bytes are on this machine: a file the agent already has, and the place in it. */
export interface ChunkLocation {
  readonly file: string;
  readonly offset: number;
  readonly size: number;
}

/**
 * What the agent already holds, cut the way the feed cuts (app/base/chunking.ts): the files of the
 * installed version, of a version staged earlier, and the chunks downloaded for a release not yet
 * staged. Any chunk of any of them counts, whatever version it came from, so an agent several
 * releases behind downloads only the bytes that differ from everything it has. The pages of these
 * files are computed too: a page of the new release the agent can compute need not be downloaded.
 *
 * Found by content, never trusted by it: every chunk is hashed again when it is copied (stage.ts).
 */
export class LocalChunks {
  readonly #wholeFiles = new Map<string, string>();
  readonly #chunks = new Map<string, ChunkLocation>();
  readonly #pages = new Map<string, ReadonlyArray<{ sha256: string; size: number }>>();
  #bytes = 0;

  /** Reads every regular file under `roots` (links are not followed) and every chunk in `storeDir`. */
  static async scan(roots: readonly string[], storeDir: string, chunking: Chunking): Promise<LocalChunks> {
    const local = new LocalChunks();
    for (const root of roots) for (const file of regularFiles(root)) await local.#add(file, chunking);
    local.addStore(storeDir);
    return local;
  }

  /** Adds the chunks in the chunk store (downloaded and verified earlier). */
  addStore(storeDir: string): void {
    for (const [sha256, where] of ChunkStore.read(storeDir)) this.#chunks.set(sha256, where);
  }

  /** A file with these bytes, if the agent has one (any path, any version). */
  wholeFile(sha256: string): string | undefined {
    return this.#wholeFiles.get(sha256);
  }

  chunk(sha256: string): ChunkLocation | undefined {
    return this.#chunks.get(sha256);
  }

  /** The chunks of a page the agent can compute from its own files. */
  page(id: string): ReadonlyArray<{ sha256: string; size: number }> | undefined {
    return this.#pages.get(id);
  }

  /** How many bytes were read to find all this. */
  get scannedBytes(): number {
    return this.#bytes;
  }

  async #add(file: string, chunking: Chunking): Promise<void> {
    const chunked = await chunkFile(file, chunking);
    this.#bytes += chunked.size;
    this.#wholeFiles.set(chunked.sha256, file);
    for (const chunk of chunked.chunks) this.#chunks.set(chunk.sha256, { file, offset: chunk.offset, size: chunk.size });
    if (chunked.chunks.length > 1) for (const page of splitPages(chunked.chunks, chunking)) this.#pages.set(page.id, page.chunks);
  }
}

function regularFiles(root: string): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) files.push(full);
    }
  };
  if (fs.lstatSync(root, { throwIfNoEntry: false })?.isDirectory()) walk(root);
  return files;
}
