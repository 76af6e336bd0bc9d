import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { constants as zlib, zstdCompressSync } from 'node:zlib';
import { type ChunkedFile, chunkFile, encodeIndex, encodePage, type FileChunk, sha256Hex, splitPages } from '../app/base/chunking.js';
import type { Chunking } from '../app/common/release.js';
import { DEFAULT_CHUNKING } from '../tools/release/release-writer.js';
import { BASE_VARIANT, buildElectronShapedApp, type ElectronAppVariant } from './electron-shaped-app.js';
import type { Benchmark, Figure } from './measure.js';

const AVERAGES = [8 * 1024, 16 * 1024, 32 * 1024, 64 * 1024];
const CHANGES: ReadonlyArray<{ name: string; variant: ElectronAppVariant }> = [
  { name: 'one line of main.js', variant: { ...BASE_VARIANT, mainJsRevision: 1 } },
  { name: 'one 100 KiB image', variant: { ...BASE_VARIANT, imageRevision: 1 } },
  { name: 'version bump', variant: { ...BASE_VARIANT, version: '1.0.1' } },
];

/**
 * How the chunk size was chosen: for average chunk sizes from 8 to 64 KiB (minimum a quarter, maximum
 * four times, pages as in the feed), what an agent holding 1.0.0 of the Electron-shaped app downloads
 * for each change, the chunk lists counted (each changed file's index and the pages the agent cannot
 * compute), every object compressed as the release tool does (zstd 19); and how many chunks a full
 * download of the app is, the requests of a fresh install. Computed from the files, no server: the
 * same choice of what to fetch as the agent's (`release-plan.ts`), without its metadata (the same for
 * every size).
 */
export const chunkSizes: Benchmark = {
  name: 'chunk sizes (Electron-shaped app)',
  async run({ quick, log }) {
    const lab = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-chunk-sizes-'));
    try {
      const scale = quick ? 0.1 : 1;
      const base = path.join(lab, 'base');
      await buildElectronShapedApp(base, BASE_VARIANT, { scale });
      const changed: Array<{ name: string; dir: string }> = [];
      for (const [i, change] of CHANGES.entries()) {
        const dir = path.join(lab, `change-${i}`);
        await buildElectronShapedApp(dir, change.variant, { scale });
        changed.push({ ...change, dir });
      }
      // bytes[a][c]: change c with the a-th average size.
      const bytes: number[][] = [];
      for (const avg of AVERAGES) {
        const chunking: Chunking = { ...DEFAULT_CHUNKING, min: avg / 4, avg, max: avg * 4 };
        const held = await cut(base, chunking);
        const chunks = new Set(held.flatMap((f) => f.chunks.map((c) => c.sha256)));
        const pages = new Set(held.flatMap((f) => (f.chunks.length > 1 ? splitPages(f.chunks, chunking).map((p) => p.id) : [])));
        const files = new Set(held.map((f) => f.sha256));
        const row: number[] = [];
        for (const change of changed) row.push(await downloadFor(change.dir, chunking, { chunks, pages, files }));
        bytes.push(row);
        log(`${avg / 1024} KiB average: ${changed.map((c, i) => `${c.name} ${kb(row[i] as number)} KB`).join('; ')}; a full download is ${chunks.size} chunks`);
      }
      const chosen = bytes[AVERAGES.indexOf(DEFAULT_CHUNKING.avg)] as number[];
      return AVERAGES.flatMap((avg, a) =>
        changed.map(
          (change, c): Figure => ({
            name: `${change.name}, ${avg / 1024} KiB chunks: bytes`,
            unit: 'KB',
            value: (bytes[a]?.[c] ?? 0) / 1000,
            baseline: (chosen[c] ?? 0) / 1000,
            baselineName: "16 KiB chunks (the feed's)",
            goal: 'reported: how the size was chosen',
            met: true,
          }),
        ),
      );
    } finally {
      fs.rmSync(lab, { recursive: true, force: true });
    }
  },
};

/** What an agent holding `held` downloads of the app in `dir`: chunks, indexes and pages, compressed. */
async function downloadFor(dir: string, chunking: Chunking, held: { chunks: Set<string>; pages: Set<string>; files: Set<string> }): Promise<number> {
  let bytes = 0;
  const fetched = new Set<string>();
  for (const file of walk(dir)) {
    const stored = new Map<string, number>();
    const chunked = await chunkFile(file, chunking, (chunk, raw) => {
      if (!held.chunks.has(chunk.sha256) && !fetched.has(chunk.sha256)) {
        fetched.add(chunk.sha256);
        stored.set(chunk.sha256, compressed(raw));
      }
    });
    if (held.files.has(chunked.sha256)) continue;
    bytes += [...stored.values()].reduce((n, b) => n + b, 0);
    if (chunked.chunks.length > 1) {
      // A page gives each chunk's frame length; for a chunk not compressed here (the agent holds
      // it), its raw size stands in: four bytes either way.
      const framed = (chunks: readonly FileChunk[]) => chunks.map((c) => ({ ...c, stored: stored.get(c.sha256) ?? c.size }));
      const pages = splitPages(chunked.chunks, chunking).map((p) => {
        const chunks = framed(p.chunks);
        return { id: p.id, bytes: encodePage(chunks), stored: chunks.reduce((n, c) => n + c.stored, 0) };
      });
      bytes += compressed(encodeIndex(pages.map((p) => ({ id: p.id, page: sha256Hex(p.bytes), stored: p.stored }))));
      for (const page of pages) if (!held.pages.has(page.id)) bytes += compressed(page.bytes);
    }
  }
  return bytes;
}

async function cut(dir: string, chunking: Chunking): Promise<ChunkedFile[]> {
  const files: ChunkedFile[] = [];
  for (const file of walk(dir)) files.push(await chunkFile(file, chunking));
  return files;
}

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

function compressed(bytes: Uint8Array): number {
  return zstdCompressSync(bytes, { params: { [zlib.ZSTD_c_compressionLevel]: 19 } }).length;
}

function kb(bytes: number): string {
  return (bytes / 1000).toFixed(1);
}
