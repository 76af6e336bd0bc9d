import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ManifestFile, RelativeFilePath, type ReleaseManifest } from '../../../common/release.js';
import { describeError, ErrorCode, OutpostError } from '../../../base/errors.js';
import { ChunkStore } from './chunk-store.js';
import type { LocalChunks } from './local-chunks.js';
import type { ChunkNeed, ReleasePlan } from './release-plan.js';

export interface StageRequest {
  readonly manifest: ReleaseManifest;
  readonly plan: ReleasePlan;
  readonly local: LocalChunks;
  /** The chunk store's folder: a pack found damaged there is deleted, so that its chunks are downloaded again. */
  readonly storeDir: string;
  /** The complete tree appears here, and only complete. */
  readonly stagedDir: string;
}

/**
 * Builds the new version's complete tree in `<stagedDir>.partial`, then renames it to `stagedDir`.
 * A file is copied from one the agent has, or assembled from chunks read one at a time from local
 * files and the chunk store; every chunk is hashed again as it is read (a local file may have changed
 * since it was scanned, a stored chunk may have been damaged), and every file's size and SHA-256 are
 * checked as it is written. Paths are checked again here (a manifest is outside data even when signed);
 * files are created exclusively in folders this function made, so nothing is written through a link.
 */
export async function stageRelease(request: StageRequest): Promise<void> {
  const { manifest, plan, stagedDir, local } = request;
  const partial = `${stagedDir}.partial`;
  fs.rmSync(partial, { recursive: true, force: true });
  fs.rmSync(stagedDir, { recursive: true, force: true });
  fs.mkdirSync(partial, { recursive: true, mode: 0o700 });
  try {
    for (const { file, source } of plan.files) {
      const bytes = source.kind === 'whole' ? fs.createReadStream(source.file) : Readable.from(readChunks(source.chunks, local, request.storeDir));
      await writeVerified(file, partial, bytes);
    }
    fs.renameSync(partial, stagedDir);
  } catch (error) {
    fs.rmSync(partial, { recursive: true, force: true });
    throw error instanceof OutpostError ? error : new OutpostError(ErrorCode.UPDATE_STAGE, `Staging ${manifest.version} failed: ${describeError(error)}.`, { cause: error });
  }
}

/** A file's bytes, chunk by chunk, each checked against its hash; one chunk in memory at a time. */
async function* readChunks(chunks: readonly ChunkNeed[], local: LocalChunks, storeDir: string): AsyncGenerator<Buffer> {
  // Consecutive chunks mostly come from one file (the installed copy of the same file): it stays open.
  let open: { file: string; handle: fs.promises.FileHandle } | undefined;
  try {
    for (const chunk of chunks) {
      const where = local.chunk(chunk.sha256);
      if (!where || where.size < chunk.size) throw new OutpostError(ErrorCode.UPDATE_STAGE, `Staging failed: chunk ${chunk.sha256.slice(0, 12)} is not on this machine any more (it will be downloaded again).`);
      if (open?.file !== where.file) {
        await open?.handle.close();
        open = undefined;
        open = { file: where.file, handle: await fs.promises.open(where.file, 'r') };
      }
      const bytes = Buffer.allocUnsafe(chunk.size);
      const { bytesRead } = await open.handle.read(bytes, 0, chunk.size, where.offset);
      if (bytesRead !== chunk.size || createHash('sha256').update(bytes).digest('hex') !== chunk.sha256) {
        // A damaged pack goes, so that the next check fetches its chunks again; a file of the installation is left alone.
        if (ChunkStore.isPack(storeDir, where.file)) fs.rmSync(where.file, { force: true });
        throw new OutpostError(ErrorCode.UPDATE_STAGE, `Staging failed: chunk ${chunk.sha256.slice(0, 12)} in ${where.file} changed since it was checked (it will be downloaded again).`);
      }
      yield bytes;
    }
  } finally {
    await open?.handle.close();
  }
}

/**
 * Checks a staged tree against its manifest before it is handed over again (it waited on disk, where
 * anything may have touched it): every file with its size and SHA-256, and nothing else. Returns what
 * is wrong, or null.
 */
export async function checkStaged(manifest: ReleaseManifest, stagedDir: string): Promise<string | null> {
  const expected = new Map(manifest.files.map((f) => [f.path, f]));
  const seen: string[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const relative = `${prefix}${entry.name}`;
      if (entry.isDirectory()) walk(path.join(dir, entry.name), `${relative}/`);
      else seen.push(relative);
    }
  };
  try {
    walk(stagedDir, '');
  } catch (error) {
    return `cannot read ${stagedDir}: ${describeError(error)}`;
  }
  const extra = seen.find((p) => !expected.has(p));
  if (extra) return `${extra} is not part of ${manifest.version}`;
  for (const file of manifest.files) {
    const target = safeJoin(stagedDir, file.path);
    const stat = fs.lstatSync(target, { throwIfNoEntry: false });
    if (!stat?.isFile()) return `${file.path} is missing`;
    if (stat.size !== file.size || (await sha256File(target)) !== file.sha256) return `${file.path} does not match its signed size and SHA-256`;
  }
  return null;
}

async function writeVerified(file: ManifestFile, root: string, source: Readable): Promise<void> {
  const target = safeJoin(root, file.path);
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
  const hash = createHash('sha256');
  let size = 0;
  const out = fs.createWriteStream(target, { flags: 'wx', mode: file.mode });
  const counter = async function* (chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      size += chunk.length;
      if (size > file.size) throw new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: ${file.path} is longer than its signed size of ${file.size} bytes.`);
      hash.update(chunk);
      yield chunk;
    }
  };
  await pipeline(source, counter, out);
  if (size !== file.size || hash.digest('hex') !== file.sha256) {
    throw new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: ${file.path} does not match its signed size and SHA-256.`);
  }
  fs.chmodSync(target, file.mode);
}

/** `root/relative`, refusing anything that would land outside `root` (checked again at every use). */
export function safeJoin(root: string, relative: string): string {
  if (!RelativeFilePath.safeParse(relative).success) throw new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: the path "${relative}" is not allowed in a release.`);
  const resolved = path.resolve(root, ...relative.split('/'));
  if (!resolved.startsWith(path.resolve(root) + path.sep)) throw new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: "${relative}" points outside the application folder.`);
  return resolved;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
