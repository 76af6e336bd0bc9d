import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress } from 'node:zlib';
import { type ManifestFile, RelativeFilePath, type ReleaseManifest } from '../../../common/release.js';
import { describeError, ErrorCode, OutpostError } from '../../../base/errors.js';

/**
 * Where a file of the new version comes from: the installed copy (when its bytes are already right)
 * or a downloaded, verified blob.
 */
export interface StagePlan {
  readonly fromInstalled: readonly ManifestFile[];
  readonly fromBlobs: readonly ManifestFile[];
}

/** Which files the installed copy already has, byte for byte (checked by hash, symlinks never followed). */
export async function planStage(manifest: ReleaseManifest, installDir: string): Promise<StagePlan> {
  const fromInstalled: ManifestFile[] = [];
  const fromBlobs: ManifestFile[] = [];
  for (const file of manifest.files) {
    const source = safeJoin(installDir, file.path);
    const stat = fs.lstatSync(source, { throwIfNoEntry: false });
    const same = stat?.isFile() && stat.size === file.size && (await sha256File(source)) === file.sha256;
    (same ? fromInstalled : fromBlobs).push(file);
  }
  return { fromInstalled, fromBlobs };
}

export interface StageRequest {
  readonly manifest: ReleaseManifest;
  readonly plan: StagePlan;
  readonly installDir: string;
  /** Verified blobs by the SHA-256 of their raw bytes. */
  readonly blobFile: (rawSha256: string) => string;
  /** The complete tree appears here, and only complete. */
  readonly stagedDir: string;
  readonly onFile?: (done: number, total: number) => void;
}

/**
 * Builds the new version's complete tree in `<stagedDir>.partial`, checking the SHA-256 and size of
 * every file as it is written, then renames it to `stagedDir`. Paths are checked again here (a
 * manifest is outside data even when signed); files are created exclusively in folders this function
 * made, so nothing is written through a link.
 */
export async function stageRelease(request: StageRequest): Promise<void> {
  const { manifest, plan, stagedDir } = request;
  const partial = `${stagedDir}.partial`;
  fs.rmSync(partial, { recursive: true, force: true });
  fs.rmSync(stagedDir, { recursive: true, force: true });
  fs.mkdirSync(partial, { recursive: true, mode: 0o700 });
  const total = manifest.files.length;
  let done = 0;
  try {
    for (const file of plan.fromInstalled) {
      await writeVerified(file, partial, fs.createReadStream(safeJoin(request.installDir, file.path)), null);
      request.onFile?.(++done, total);
    }
    for (const file of plan.fromBlobs) {
      await writeVerified(file, partial, fs.createReadStream(request.blobFile(file.sha256)), createBrotliDecompress());
      request.onFile?.(++done, total);
    }
    fs.renameSync(partial, stagedDir);
  } catch (error) {
    fs.rmSync(partial, { recursive: true, force: true });
    throw error instanceof OutpostError ? error : new OutpostError(ErrorCode.UPDATE_STAGE, `Staging ${manifest.version} failed: ${describeError(error)}.`, { cause: error });
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

async function writeVerified(file: ManifestFile, root: string, source: Readable, decompress: Transform | null): Promise<void> {
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
  if (decompress) await pipeline(source, decompress, counter, out);
  else await pipeline(source, counter, out);
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
