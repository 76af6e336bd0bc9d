import fs from 'node:fs';
import path from 'node:path';
import { chunkFile, encodeIndex, encodePage, splitPages } from '../../app/base/chunking.js';
import { type Chunking, type ManifestFile, RelativeFilePath, ReleaseManifest } from '../../app/common/release.js';
import type { ObjectStore } from './object-store.js';

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
 * Cuts every file of `appDir` into chunks, stores the chunks, pages, indexes and the manifest the
 * feed lacks, and returns the manifest. Nothing is signed here: the caller points a channel at it.
 */
export async function writeRelease(store: ObjectStore, appDir: string, version: string, chunking: Chunking): Promise<WrittenRelease> {
  const files: ManifestFile[] = [];
  let newChunks = 0;
  let newStoredBytes = 0;
  const count = <T extends { length: number; added: boolean }>(put: T): T => {
    if (put.added) newStoredBytes += put.length;
    return put;
  };
  for (const file of appFiles(appDir)) {
    const chunked = await chunkFile(file.absolute, chunking, (chunk, bytes) => {
      if (count(store.put('chunks', bytes, chunk.sha256)).added) newChunks++;
    });
    const entry: ManifestFile = { path: file.path, size: chunked.size, sha256: chunked.sha256, mode: file.mode };
    if (chunked.chunks.length > 1) {
      const pageIds = splitPages(chunked.chunks, chunking).map((page) => count(store.put('pages', encodePage(page.chunks), page.id)).sha256);
      const { sha256, length } = count(store.put('indexes', encodeIndex(pageIds)));
      entry.index = { sha256, length };
    }
    files.push(entry);
  }
  if (files.length === 0) throw new Error(`--app ${appDir} holds no files`);
  const manifest = ReleaseManifest.parse({ version, chunking, files });
  const { sha256, length } = count(store.put('manifests', Buffer.from(JSON.stringify(manifest))));
  return { manifest, ref: { sha256, length }, bytes: files.reduce((n, f) => n + f.size, 0), newChunks, newStoredBytes };
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
