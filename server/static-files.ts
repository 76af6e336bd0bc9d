import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';

/** Where the feed is served: `/feed/<path inside the feed folder>`. */
export const FEED_PREFIX = '/feed/';

/**
 * GET and HEAD for the files of the feed folder, and nothing else: only regular files inside it,
 * never a directory, a dotfile (a release tool's half-written temp file, `.git`...) or anything a
 * symlink leads to outside it. Byte ranges are supported because agents resume dropped downloads.
 *
 * Every refusal is a plain 404 that does not say why, so that probing reveals nothing about the disk.
 */
export class FeedFiles {
  readonly #root: string;

  /** `root`: the feed folder, already resolved with realpath (the containment check compares real paths). */
  constructor(root: string) {
    this.#root = root;
  }

  /** Answers a request whose raw path (no query) starts with FEED_PREFIX. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, rawPath: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': 0 }).end();
      return;
    }
    const relative = feedRelativePath(rawPath.slice(FEED_PREFIX.length));
    const file = relative === undefined ? undefined : await this.#open(relative);
    if (relative === undefined || !file) {
      notFound(res);
      return;
    }
    const { handle, size, relative: realRelative } = file;
    let streaming = false;
    try {
      const range = parseRange(req.headers.range, size);
      const headers: http.OutgoingHttpHeaders = {
        'Content-Type': realRelative.endsWith('.json') ? 'application/json' : 'application/octet-stream',
        'Accept-Ranges': 'bytes',
        'Cache-Control': cacheControl(relative),
      };
      if (range === 'unsatisfiable') {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 }).end();
        return;
      }
      if (!range && realRelative.endsWith('.json') && acceptsGzip(req) && size <= MAX_GZIP_BYTES) {
        // TUF metadata and channel pointers are JSON full of hex hashes: gzip halves what every agent
        // downloads at every check. Manifests, indexes, pages and files are zstd already. The agent's
        // length limits apply to the bytes after decompression, so this cannot smuggle in more data.
        const body = gzipSync(await handle.readFile());
        res.writeHead(200, { ...headers, 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding', 'Content-Length': body.length });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      const { start, end } = range ?? { start: 0, end: size - 1 };
      const length = end - start + 1;
      if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
      res.writeHead(range ? 206 : 200, { ...headers, 'Content-Length': length });
      if (req.method === 'HEAD' || length === 0) {
        res.end();
        return;
      }
      // The stream owns the handle from here (autoClose); pipeline destroys it when the client leaves.
      streaming = true;
      await pipeline(handle.createReadStream({ start, end }), res).catch(() => {
        // The client went away mid-download (it will resume with a Range request): nothing to do.
      });
    } finally {
      if (!streaming) await handle.close();
    }
  }

  /**
   * Opens a file of the feed, or undefined when the path must not be served. The real path is
   * checked (a symlink may point anywhere), then the opened descriptor itself is checked, so that
   * what is sent is the regular file that passed the check even if the name changes meanwhile.
   */
  async #open(relative: string): Promise<{ handle: fs.promises.FileHandle; size: number; relative: string } | undefined> {
    let real: string;
    try {
      real = await fs.promises.realpath(path.join(this.#root, relative));
    } catch {
      return undefined;
    }
    const realRelative = path.relative(this.#root, real);
    if (realRelative === '' || path.isAbsolute(realRelative) || realRelative.split(path.sep).some((segment) => segment.startsWith('.'))) return undefined;
    let handle: fs.promises.FileHandle;
    try {
      // O_NONBLOCK: opening a FIFO someone left in the feed must not wait for a writer (it is then
      // refused as not a regular file); it changes nothing for regular files.
      handle = await fs.promises.open(real, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0));
    } catch {
      return undefined;
    }
    try {
      const stat = await handle.stat();
      if (stat.isFile()) return { handle, size: stat.size, relative: realRelative };
    } catch {
      // Fall through: not servable.
    }
    await handle.close();
    return undefined;
  }
}

/**
 * The path inside the feed that a raw URL path names (slash-separated, always), or undefined if it
 * is not a plain relative path. Each segment is decoded on its own, so an encoded slash or dot
 * (`..%2f`, `%2e%2e`) cannot form a separator or a parent reference after the check; empty
 * segments (an absolute path, `//`), `.`/`..`, dotfiles, backslashes, NUL and colons (a drive
 * letter or an NTFS stream on Windows) are all refused.
 */
export function feedRelativePath(raw: string): string | undefined {
  const segments: string[] = [];
  for (const encoded of raw.split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(encoded);
    } catch {
      return undefined;
    }
    if (segment === '' || segment.startsWith('.') || /[/\\:\0]/.test(segment)) return undefined;
    segments.push(segment);
  }
  return segments.length > 0 ? segments.join('/') : undefined;
}

const MAX_GZIP_BYTES = 16 * 1024 * 1024;

function acceptsGzip(req: http.IncomingMessage): boolean {
  return /(?:^|,)\s*gzip\s*(?:;\s*q=(?!0(?:\.0*)?\s*(?:,|$))[\d.]+)?\s*(?:,|$)/i.test(String(req.headers['accept-encoding'] ?? ''));
}

/**
 * A single byte range (`bytes=N-`, `bytes=N-M`, `bytes=-N`), clamped to the file; undefined when
 * there is no Range header or one we do not honour (several ranges, another unit, malformed): the
 * whole file is then sent with 200, which RFC 9110 allows. 'unsatisfiable' (416) when the range
 * starts past the end. If-Range is not needed: every file but timestamp.json is immutable, and the
 * agent verifies each download against the signed hashes anyway.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    // A suffix: the last N bytes.
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    return size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

/**
 * What never changes once published, so that caches may keep it for good: versioned metadata
 * (`metadata/<N>.*.json`), TUF targets (`targets/<dir>/<hash>.<name>`) and the content-addressed
 * objects (`manifests/`, `indexes/`, `pages/`, `files/`). Anything else (timestamp.json, an
 * unversioned root.json) changes with a publish and is revalidated on every request.
 */
const IMMUTABLE = /^(metadata\/\d+\.[^/]+|(targets|manifests|indexes|pages|files)\/.+)$/;

function cacheControl(relative: string): string {
  return IMMUTABLE.test(relative) ? 'public, max-age=31536000, immutable' : 'no-cache';
}

function notFound(res: http.ServerResponse): void {
  const body = 'not found\n';
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' }).end(body);
}
