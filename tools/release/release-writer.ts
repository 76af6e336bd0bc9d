import fs from 'node:fs';
import path from 'node:path';
import { chunkFile, decodeIndex, decodePage, encodeIndex, encodePage, type FramedChunk, type IndexEntry, splitPages } from '../../app/base/chunking.js';
import { type Chunking, type ManifestFile, RelativeFilePath, ReleaseManifest } from '../../app/common/release.js';
import { compressFrame, type ObjectStore } from './object-store.js';

/**
 * How this release tool cuts files, chosen by measurement on an Electron-shaped app
 * (bench/chunk-sizes.ts, docs/updates.md): 16 KiB chunks cost half to a third of what 32 and 64 KiB
 * ones do per change, and half the requests of 8 KiB ones on a big download; pages of about 64
 * chunks (1 MiB of file) keep the index of the 96 MB executable to one small page per change.
 */
export const DEFAULT_CHUNKING: Chunking = { min: 4096, avg: 16384, max: 65536, page_avg: 64, page_max: 256 };

export interface WrittenRelease {
  readonly manifest: ReleaseManifest;
  /** The manifest's stored object. */
  readonly ref: { sha256: string; length: number };
  readonly bytes: number;
  /** What no earlier release had: what an agent that holds the previous release downloads at most. */
  readonly newChunks: number;
  readonly newStoredBytes: number;
}

/**
 * Cuts every file of `appDir` into chunks and stores what the feed lacks: each new file's object (its
 * chunks' frames in order), its pages and index, and the manifest; returns the manifest. A chunk the
 * previous release has is not compressed again: its frame is copied from that release's object, so a
 * publish costs the compression of new chunks only, and a chunk keeps one frame (and one length in
 * every page that lists it) for as long as releases carry it. Nothing is signed here: the caller
 * points a channel at the manifest.
 */
export async function writeRelease(store: ObjectStore, appDir: string, version: string, chunking: Chunking, previous?: ReleaseManifest): Promise<WrittenRelease> {
  const files: ManifestFile[] = [];
  const frames = new EarlierFrames(store, previous && sameChunking(previous.chunking, chunking) ? previous : undefined);
  let newChunks = 0;
  let newStoredBytes = 0;
  const count = <T extends { length: number; added: boolean }>(put: T): T => {
    if (put.added) newStoredBytes += put.length;
    return put;
  };
  for (const file of appFiles(appDir)) {
    const { sha256, size, chunks } = await chunkFile(file.absolute, chunking);
    const entry: ManifestFile = { path: file.path, size, sha256, mode: file.mode };
    if (chunks.length > 0) {
      const framed = frames.objectOf(sha256) ?? (await writeFileObject(store, frames, file.absolute, sha256, chunking, (stored) => {
        newChunks++;
        newStoredBytes += stored;
      }));
      if (framed.length > 1) {
        const index: IndexEntry[] = [];
        let at = 0;
        for (const page of splitPages(chunks, chunking)) {
          const pageChunks = framed.slice(at, at + page.chunks.length);
          at += page.chunks.length;
          const stored = count(store.put('pages', encodePage(pageChunks)));
          index.push({ id: page.id, page: stored.sha256, stored: pageChunks.reduce((n, c) => n + c.stored, 0) });
        }
        const { sha256: indexSha, length } = count(store.put('indexes', encodeIndex(index)));
        entry.index = { sha256: indexSha, length };
      }
    }
    files.push(entry);
  }
  if (files.length === 0) throw new Error(`--app ${appDir} holds no files`);
  const manifest = ReleaseManifest.parse({ version, chunking, files });
  const { sha256, length } = count(store.put('manifests', Buffer.from(JSON.stringify(manifest))));
  return { manifest, ref: { sha256, length }, bytes: files.reduce((n, f) => n + f.size, 0), newChunks, newStoredBytes };
}

/** Writes a file's object, each chunk's frame copied from an earlier object or compressed now (`onNew`). */
async function writeFileObject(store: ObjectStore, frames: EarlierFrames, file: string, sha256: string, chunking: Chunking, onNew: (stored: number) => void): Promise<FramedChunk[]> {
  const object = store.beginFile(sha256);
  const framed: FramedChunk[] = [];
  try {
    const written = await chunkFile(file, chunking, (chunk, bytes) => {
      let frame = frames.frame(chunk.sha256);
      if (!frame) {
        frame = compressFrame(bytes);
        onNew(frame.length);
      }
      object.append(frame);
      framed.push({ sha256: chunk.sha256, size: chunk.size, stored: frame.length });
    });
    if (written.sha256 !== sha256) throw new Error(`${file} changed while it was being published; publish again`);
    object.commit();
  } catch (error) {
    object.abort();
    throw error;
  }
  frames.learn(sha256, framed);
  return framed;
}

/**
 * The frames of the previous release's objects, by chunk and by object, read from its pages when
 * first asked for, and those of the files written so far (a chunk shared by two files of this release
 * is compressed once).
 */
class EarlierFrames {
  readonly #store: ObjectStore;
  #previous: ReleaseManifest | undefined;
  readonly #where = new Map<string, { object: string; offset: number; stored: number }>();
  readonly #objects = new Map<string, readonly FramedChunk[]>();

  constructor(store: ObjectStore, previous: ReleaseManifest | undefined) {
    this.#store = store;
    this.#previous = previous;
  }

  frame(chunkSha: string): Buffer | undefined {
    if (this.#previous) this.#readPrevious(this.#previous);
    const where = this.#where.get(chunkSha);
    return where && this.#store.readRange('files', where.object, where.offset, where.stored);
  }

  /** The frames of a file's object the previous release has (an unchanged file is not written again). */
  objectOf(fileSha: string): readonly FramedChunk[] | undefined {
    if (this.#previous) this.#readPrevious(this.#previous);
    return this.#objects.get(fileSha);
  }

  learn(object: string, chunks: readonly FramedChunk[]): void {
    this.#objects.set(object, chunks);
    let offset = 0;
    for (const chunk of chunks) {
      if (!this.#where.has(chunk.sha256)) this.#where.set(chunk.sha256, { object, offset, stored: chunk.stored });
      offset += chunk.stored;
    }
  }

  #readPrevious(previous: ReleaseManifest): void {
    this.#previous = undefined;
    for (const file of previous.files) {
      if (file.size === 0) continue;
      if (!file.index) {
        this.learn(file.sha256, [{ sha256: file.sha256, size: file.size, stored: fs.statSync(this.#store.file('files', file.sha256)).size }]);
        continue;
      }
      const index = decodeIndex(this.#store.read('indexes', file.index.sha256));
      if (typeof index === 'string') throw new Error(`the index of ${file.path} in ${previous.version} is damaged (${index})`);
      const chunks: FramedChunk[] = [];
      for (const entry of index) {
        const page = decodePage(this.#store.read('pages', entry.page), previous.chunking);
        if (typeof page === 'string') throw new Error(`a page of ${file.path} in ${previous.version} is damaged (${page})`);
        chunks.push(...page);
      }
      this.learn(file.sha256, chunks);
    }
  }
}

function sameChunking(a: Chunking, b: Chunking): boolean {
  return a.min === b.min && a.avg === b.avg && a.max === b.max && a.page_avg === b.page_avg && a.page_max === b.page_max;
}

interface AppFile {
  readonly absolute: string;
  readonly path: string;
  readonly mode: number;
}

/** Every regular file of the application folder, in a stable order; a symlink or anything else is refused, not followed. */
function appFiles(appDir: string): AppFile[] {
  const root = path.resolve(appDir);
  if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`--app ${appDir} is not a folder`);
  const files: AppFile[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const absolute = path.join(dir, entry.name);
      const relative = path.relative(root, absolute).split(path.sep).join('/');
      if (entry.isDirectory()) walk(absolute);
      else if (entry.isFile()) {
        const checked = RelativeFilePath.safeParse(relative);
        if (!checked.success) throw new Error(`${relative}: ${checked.error.issues[0]?.message}`);
        files.push({ absolute, path: relative, mode: fs.statSync(absolute).mode & 0o111 ? 0o755 : 0o644 });
      } else throw new Error(`${relative} is not a regular file (a symlink or a device); a release holds regular files only`);
    }
  };
  walk(root);
  return files;
}
