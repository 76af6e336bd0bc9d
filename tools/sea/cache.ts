/**
 * Built executables kept under <cache>/<target>-<key>/ (the executable and its sha256): an output is a
 * pure function of the inputs its key hashes, and injecting into the 93 MB node.exe takes about 30 s.
 */
import fs from 'node:fs';
import path from 'node:path';
import { exists, publish, sha256 } from './files.js';
import { SeaBuildError } from './sea-build-error.js';

/** How many entries of a target are kept (the most recently used). */
const KEEP = 3;

export interface CacheTarget {
  /** linux-x64, win32-x64: the prefix of the target's entries. */
  readonly dir: string;
  readonly file: string;
}

export class ExecutableCache {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Publishes the cached executable to `out`, checked against its recorded sha256: that digest, or null when none is cached. */
  take(target: CacheTarget, key: string, out: string): string | null {
    const entry = this.#entry(target, key);
    const cached = path.join(entry, target.file);
    if (!exists(cached) || !exists(path.join(entry, 'sha256'))) return null;
    const digest = fs.readFileSync(path.join(entry, 'sha256'), 'utf8').trim();
    publish(cached, out);
    const copied = sha256(fs.readFileSync(out));
    if (copied !== digest) throw new SeaBuildError(`the cached ${cached} does not match its recorded sha256: delete ${entry} and build again`);
    fs.utimesSync(entry, new Date(), new Date()); // most recently used, for pruning
    return digest;
  }

  /** Stores `exe` under its key, whole or not at all (staged, then renamed), and prunes the target's old entries. */
  store(target: CacheTarget, key: string, exe: string, digest: string): void {
    fs.mkdirSync(this.#dir, { recursive: true });
    const staged = fs.mkdtempSync(path.join(this.#dir, `.staging-${target.dir}-`));
    fs.copyFileSync(exe, path.join(staged, target.file));
    fs.writeFileSync(path.join(staged, 'sha256'), `${digest}\n`);
    try {
      fs.renameSync(staged, this.#entry(target, key));
    } catch {
      fs.rmSync(staged, { recursive: true, force: true }); // another build stored the same key meanwhile
    }
    this.#prune(target);
  }

  #entry(target: CacheTarget, key: string): string {
    return path.join(this.#dir, `${target.dir}-${key}`);
  }

  /** Keeps the KEEP newest entries of a target. */
  #prune(target: CacheTarget): void {
    const entries = fs
      .readdirSync(this.#dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && entry.name.startsWith(`${target.dir}-`))
      .map((entry) => ({ dir: path.join(this.#dir, entry.name), mtime: fs.statSync(path.join(this.#dir, entry.name)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime);
    for (const old of entries.slice(KEEP)) fs.rmSync(old.dir, { recursive: true, force: true });
  }
}
