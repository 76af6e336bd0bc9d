import fs from 'node:fs';
import path from 'node:path';
import { Metadata, MetadataKind } from '@tufjs/models';
import axios, { type AxiosInstance } from 'axios';
import { type Fetcher, type TargetFile, Updater } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { z } from 'zod';
import { FEED_METADATA_DIR, storedTargetPath } from '../../../common/release.js';
import { readText, writeFileAtomic } from '../../../base/durable-file.js';
import { describeError, ErrorCode, isOutpostError, OutpostError } from '../../../base/errors.js';
import { tryParseJson } from '../../../base/jsonl.js';
import type { Logger } from '../../../base/logger.js';
import { fetchBytes } from './fetch-bytes.js';
import { storageHash, TargetHashes } from './target-hashes.js';

/** What a push names: the version of the signed timestamp metadata. */
const SignedVersion = z.object({ signed: z.object({ version: z.number().int().nonnegative() }) });

/** Small targets (channel pointers, manifests) are read into memory; anything bigger is refused. */
const MAX_DOCUMENT_BYTES = 8 * 1024 * 1024;

export interface FeedOptions {
  /** The feed's base URL: `<backend.url>/feed/`. */
  readonly baseUrl: string;
  /** Where verified metadata is kept between checks (TUF's rollback protection lives there). */
  readonly cacheDir: string;
  /** The root.json this agent trusts (built in; tests and the demo: config update.trust_file). */
  readonly trustedRootFile: string;
  readonly http: AxiosInstance;
  readonly timeoutMs: number;
  readonly log: Logger;
}

/**
 * The signed release feed, through tuf-js: `refresh` runs TUF's client workflow (root rotation,
 * timestamp, snapshot, targets: signatures, thresholds, versions, expiry, lengths and hashes), and
 * everything read after it is checked against the targets metadata it verified. Any error while
 * verifying is a refusal (OutpostError ERR_UPDATE_VERIFY), never a pass.
 */
export class Feed {
  readonly #options: FeedOptions;
  #updater: Updater | undefined;

  constructor(options: FeedOptions) {
    this.#options = options;
  }

  /** Fetches and verifies the latest metadata. */
  async refresh(): Promise<void> {
    this.#updater = undefined;
    const fetcher = new AxiosFetcher(this.#options.http, this.#options.timeoutMs);
    const updater = this.#newUpdater(fetcher);
    try {
      await updater.refresh();
    } catch (error) {
      // tuf-js wraps a failed snapshot or targets download in an error of its own that keeps only
      // the text: the fetcher's own account (unreachable, or an answer too long) is the one to give.
      throw fetcher.failure ?? verifyError('the feed metadata did not verify', error);
    }
    this.#updater = updater;
  }

  /** The feed's base URL: where its content-addressed objects are too. */
  get baseUrl(): string {
    return this.#options.baseUrl;
  }

  /** The version of the timestamp metadata the last refresh verified (what a push names), or null before one. */
  timestampVersion(): number | null {
    const cached = tryParseJson(readText(path.join(this.#options.cacheDir, 'timestamp.json')));
    const parsed = SignedVersion.safeParse(cached);
    return parsed.success ? parsed.data.signed.version : null;
  }


  /** The verified description (length, hashes) of a target, or null if the feed has none by that name. */
  async target(targetPath: string): Promise<TargetFile | null> {
    if (!this.#updater) throw new Error('Feed.target before refresh');
    try {
      return (await this.#updater.getTargetInfo(targetPath)) ?? null;
    } catch (error) {
      throw verifyError(`the feed's description of ${targetPath} did not verify`, error);
    }
  }

  /** Where a target's bytes are served (TUF consistent-snapshot naming, content-addressed). */
  url(info: TargetFile): string {
    return new URL(storedTargetPath(info.path, storageHash(info.path, info.hashes)), this.#options.baseUrl).toString();
  }

  /** Downloads a small JSON target, checks its length and every hash listed, then its shape. */
  async document<S extends z.ZodType>(info: TargetFile, schema: S): Promise<z.infer<S>> {
    if (info.length > MAX_DOCUMENT_BYTES) throw verifyError(`${info.path} is ${info.length} bytes, more than a document may be`, null);
    const hashes = TargetHashes.for(info.path, info.hashes);
    const url = this.url(info);
    let bytes: Buffer;
    try {
      bytes = await fetchBytes(this.#options.http, url, info.length, this.#options.timeoutMs);
    } catch (error) {
      if (error instanceof DownloadHTTPError) throw new OutpostError(ErrorCode.UPDATE_DOWNLOAD, `Download of ${url} failed: HTTP ${error.statusCode}.`, { cause: error });
      throw error;
    }
    if (bytes.length !== info.length) throw verifyError(`${info.path} is ${bytes.length} bytes, not its signed length of ${info.length}`, null);
    hashes.update(bytes);
    hashes.verify();
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      throw verifyError(`${info.path} is not JSON`, error);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw verifyError(`${info.path} is not a valid document: ${parsed.error.issues[0]?.message}`, null);
    return parsed.data;
  }

  #newUpdater(fetcher: Fetcher): Updater {
    const { cacheDir, trustedRootFile, baseUrl, log } = this.#options;
    fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    const cachedRoot = path.join(cacheDir, 'root.json');
    if (!fs.existsSync(cachedRoot) || rootProblem(fs.readFileSync(cachedRoot)) !== null) {
      // First check, or a cache damaged by a crash mid-write (tuf-js writes in place): start again
      // from the trust anchor. The feed's newer roots are fetched and verified from it.
      if (fs.existsSync(cachedRoot)) log.warn('the cached TUF root is damaged; starting again from the trusted root', { file: cachedRoot });
      writeFileAtomic(cachedRoot, readTrustedRoot(trustedRootFile));
    }
    for (const role of ['timestamp', 'snapshot', 'targets']) {
      const file = path.join(cacheDir, `${role}.json`);
      if (fs.existsSync(file) && !isJsonFile(file)) fs.rmSync(file);
    }
    return new Updater({
      metadataDir: cacheDir,
      metadataBaseUrl: new URL(`${FEED_METADATA_DIR}/`, baseUrl).toString(),
      fetcher,
    });
  }
}

/** tuf-js's fetcher over our HTTP client (proxy settings, timeouts), with its length limits kept. */
class AxiosFetcher implements Fetcher {
  readonly #http: AxiosInstance;
  readonly #timeoutMs: number;
  /** The last download that failed other than by an HTTP status (tuf-js handles those itself). */
  failure: OutpostError | undefined;

  constructor(http: AxiosInstance, timeoutMs: number) {
    this.#http = http;
    this.#timeoutMs = timeoutMs;
  }

  async downloadBytes(url: string, maxLength: number): Promise<Buffer> {
    try {
      return await fetchBytes(this.#http, url, maxLength, this.#timeoutMs);
    } catch (error) {
      if (isOutpostError(error)) this.failure = error;
      throw error;
    }
  }

  /** Part of tuf-js's interface for its downloadTarget, which Outpost never calls: a channel pointer is read with `document`, everything below it through FeedObjects. */
  downloadFile(): Promise<never> {
    return Promise.reject(new Error('targets are not downloaded through tuf-js'));
  }
}

/**
 * The trust anchor, checked as tuf-js will load it (root metadata, signed by its own keys), so that a
 * file that is not one is reported as such, naming it, rather than as whatever tuf-js throws.
 */
function readTrustedRoot(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new OutpostError(ErrorCode.UPDATE_VERIFY, `Cannot read the trusted root ${file}: ${describeError(error)}.`, { cause: error });
  }
  const problem = rootProblem(bytes);
  if (problem !== null) throw new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: the trusted root ${file} is not valid TUF root metadata (${problem}).`);
  return bytes;
}

/** Why `bytes` is not root metadata signed by its own keys, or null if it is. */
function rootProblem(bytes: Buffer): string | null {
  try {
    const root = Metadata.fromJSON(MetadataKind.Root, JSON.parse(bytes.toString('utf8')));
    root.verifyDelegate(MetadataKind.Root, root);
    return null;
  } catch (error) {
    return describeError(error);
  }
}

function isJsonFile(file: string): boolean {
  return tryParseJson(readText(file)) !== undefined;
}

function verifyError(what: string, cause: unknown): OutpostError {
  const reason = cause === null ? '' : `: ${axios.isAxiosError(cause) ? cause.message : describeError(cause)}`;
  return new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: ${what}${reason}.`, { cause });
}
