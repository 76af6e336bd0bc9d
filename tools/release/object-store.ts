import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { constants as zlib, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { sha256Hex } from '../../app/base/chunking.js';
import { type ObjectKind, objectPath, ReleaseManifest } from '../../app/common/release.js';

/**
 * zstd level of every stored object, chosen by measurement: on real JavaScript cut into 16 KiB chunks
 * (a 5 MB bundle), level 19 stores 0.219 of it, 12 0.226, 9 0.228, at 12 times the CPU of 9. Every
 * agent downloads the result, and a publish compresses only the chunks no earlier release had: the
 * first publish pays (about 2.6 MB/s of application on one core), later ones barely notice.
 */
const ZSTD_LEVEL = 19;

/** How many fsyncs run at once when a publish makes its new objects durable (the journal batches them). */
const FSYNC_PARALLEL = 32;

/**
 * The feed's content-addressed objects (manifests, indexes, pages, files), stored zstd-compressed
 * under the SHA-256 of their raw bytes (a file's object being its chunks' frames one after another).
 * An object once written never changes, so `put` of one that exists is free; new ones are written
 * beside their final name and renamed, and `flush` makes them durable before the metadata that
 * refers to them is signed.
 */
export class ObjectStore {
  readonly #feedDir: string;
  readonly #written: string[] = [];

  constructor(feedDir: string) {
    this.#feedDir = feedDir;
  }

  /** Stores `raw` (whose SHA-256 is `sha256`, when the caller has it already); returns the stored length and whether it is new. */
  put(kind: ObjectKind, raw: Uint8Array, sha256 = sha256Hex(raw)): { sha256: string; length: number; added: boolean } {
    const file = this.file(kind, sha256);
    const existing = fs.statSync(file, { throwIfNoEntry: false });
    if (existing?.isFile()) return { sha256, length: existing.size, added: false };
    const stored = compressFrame(raw);
    const temp = this.#temp(file);
    fs.writeFileSync(temp, stored, { mode: 0o644 });
    fs.renameSync(temp, file);
    this.#written.push(file);
    return { sha256, length: stored.length, added: true };
  }

  /**
   * Writes a file's object, its chunks' frames in order, beside its final name: `append` each frame,
   * then `commit` (renamed into place, to be made durable by `flush`) or `abort`.
   */
  beginFile(sha256: string): { append(frame: Buffer): void; commit(): void; abort(): void } {
    const file = this.file('files', sha256);
    const temp = this.#temp(file);
    const fd = fs.openSync(temp, 'wx', 0o644);
    let closed = false;
    const close = () => {
      if (!closed) fs.closeSync(fd);
      closed = true;
    };
    return {
      append: (frame) => {
        fs.writeSync(fd, frame);
      },
      commit: () => {
        close();
        if (fs.existsSync(file)) {
          // Written by a release this tool no longer reads (retired, still in its grace period): a
          // published object never changes, so the new bytes must be the same.
          const same = sha256Hex(fs.readFileSync(file)) === sha256Hex(fs.readFileSync(temp));
          fs.rmSync(temp);
          if (!same) throw new Error(`${objectPath('files', sha256)} exists with other frames (written by another zstd version?); remove it, and publish again`);
          return;
        }
        fs.renameSync(temp, file);
        this.#written.push(file);
      },
      abort: () => {
        close();
        fs.rmSync(temp, { force: true });
      },
    };
  }

  /** `length` bytes of a stored object from `offset` (a frame of a file's object, reused by a later release). */
  readRange(kind: ObjectKind, sha256: string, offset: number, length: number): Buffer {
    const fd = fs.openSync(this.file(kind, sha256), 'r');
    try {
      const bytes = Buffer.alloc(length);
      if (fs.readSync(fd, bytes, 0, length, offset) !== length) throw new Error(`${objectPath(kind, sha256)} is shorter than its pages say; the feed is damaged`);
      return bytes;
    } finally {
      fs.closeSync(fd);
    }
  }

  #temp(file: string): string {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    return `${file}.tmp-${randomBytes(4).toString('hex')}`;
  }

  has(kind: ObjectKind, sha256: string): boolean {
    return fs.existsSync(this.file(kind, sha256));
  }

  /** An object's raw bytes (the release tool reads its own feed: manifests, indexes and pages). */
  read(kind: ObjectKind, sha256: string): Buffer {
    return zstdDecompressSync(fs.readFileSync(this.file(kind, sha256)));
  }

  /** A release manifest of this feed (read back by `publish` and `prune`). */
  manifest(sha256: string): ReleaseManifest {
    return ReleaseManifest.parse(JSON.parse(this.read('manifests', sha256).toString('utf8')));
  }

  file(kind: ObjectKind, sha256: string): string {
    return path.join(this.#feedDir, objectPath(kind, sha256));
  }

  /** Every object of a kind in the feed, with its file's last change (prune's grace period reads it). */
  *list(kind: ObjectKind): Generator<{ sha256: string; file: string; mtimeMs: number }> {
    const dir = path.join(this.#feedDir, kind);
    if (!fs.existsSync(dir)) return;
    for (const fan of fs.readdirSync(dir)) {
      for (const name of fs.readdirSync(path.join(dir, fan))) {
        const match = /^([0-9a-f]{64})\.zst$/.exec(name);
        if (!match) continue;
        const file = path.join(dir, fan, name);
        yield { sha256: match[1] as string, file, mtimeMs: fs.statSync(file).mtimeMs };
      }
    }
  }

  /** Writes the new objects' bytes and names to disk: called before the metadata that names them is signed. */
  async flush(): Promise<void> {
    const files = this.#written.splice(0);
    const dirs = [...new Set(files.map((f) => path.dirname(f)))];
    for (let i = 0; i < files.length; i += FSYNC_PARALLEL) await Promise.all(files.slice(i, i + FSYNC_PARALLEL).map(fsync));
    for (let i = 0; i < dirs.length; i += FSYNC_PARALLEL) await Promise.all(dirs.slice(i, i + FSYNC_PARALLEL).map(fsync));
  }
}

/** One zstd frame of `raw`, at the feed's level, without a checksum (the agent checks the SHA-256 of what it decompresses). */
export function compressFrame(raw: Uint8Array): Buffer {
  return zstdCompressSync(raw, { params: { [zlib.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [zlib.ZSTD_c_checksumFlag]: 0 } });
}

async function fsync(file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
