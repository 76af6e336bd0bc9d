import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import axios, { type AxiosInstance } from 'axios';
import { type Fetcher, type TargetFile, Updater } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import type { z } from 'zod';
import { FEED_METADATA_DIR, storedTargetPath } from '../../../common/release.js';
import { describeError, ErrorCode, OutpostError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';

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
    this.#updater = this.#newUpdater();
    try {
      await this.#updater.refresh();
    } catch (error) {
      this.#updater = undefined;
      if (axios.isAxiosError(error) && !error.response) {
        throw new OutpostError(ErrorCode.UPDATE_DOWNLOAD, `Cannot reach the release feed at ${this.#options.baseUrl}: ${error.code ?? error.message}.`, { cause: error });
      }
      throw verifyError('the feed metadata did not verify', error);
    }
  }

  /** The version of the timestamp metadata the last refresh verified (what a push names), or null before one. */
  timestampVersion(): number | null {
    try {
      const version: unknown = JSON.parse(fs.readFileSync(path.join(this.#options.cacheDir, 'timestamp.json'), 'utf8'))?.signed?.version;
      return typeof version === 'number' ? version : null;
    } catch {
      return null;
    }
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
    return new URL(storedTargetPath(info.path, sha256Of(info)), this.#options.baseUrl).toString();
  }

  /** Downloads a small JSON target, checks its length and hash, then its shape. */
  async document<S extends z.ZodType>(info: TargetFile, schema: S): Promise<z.infer<S>> {
    if (info.length > MAX_DOCUMENT_BYTES) throw verifyError(`${info.path} is ${info.length} bytes, more than a document may be`, null);
    const bytes = await fetchBytes(this.#options.http, this.url(info), info.length, this.#options.timeoutMs);
    if (bytes.length !== info.length || createHash('sha256').update(bytes).digest('hex') !== sha256Of(info)) {
      throw verifyError(`${info.path} does not match its signed length and hash`, null);
    }
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

  #newUpdater(): Updater {
    const { cacheDir, trustedRootFile, baseUrl, log } = this.#options;
    fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    const cachedRoot = path.join(cacheDir, 'root.json');
    if (!isJsonFile(cachedRoot)) {
      // First check, or a cache damaged by a crash mid-write (tuf-js writes in place): start again
      // from the trust anchor. The feed's newer roots are fetched and verified from it.
      if (fs.existsSync(cachedRoot)) log.warn('the cached TUF root is damaged; starting again from the trusted root', { file: cachedRoot });
      let anchor: Buffer;
      try {
        anchor = fs.readFileSync(trustedRootFile);
      } catch (error) {
        throw new OutpostError(ErrorCode.UPDATE_VERIFY, `Cannot read the trusted root ${trustedRootFile}: ${describeError(error)}.`, { cause: error });
      }
      const temp = `${cachedRoot}.${randomBytes(4).toString('hex')}`;
      fs.writeFileSync(temp, anchor, { mode: 0o600 });
      fs.renameSync(temp, cachedRoot);
    }
    for (const role of ['timestamp', 'snapshot', 'targets']) {
      const file = path.join(cacheDir, `${role}.json`);
      if (fs.existsSync(file) && !isJsonFile(file)) fs.rmSync(file);
    }
    return new Updater({
      metadataDir: cacheDir,
      metadataBaseUrl: new URL(`${FEED_METADATA_DIR}/`, baseUrl).toString(),
      fetcher: new AxiosFetcher(this.#options.http, this.#options.timeoutMs),
    });
  }
}

/** tuf-js's fetcher over our HTTP client (proxy settings, timeouts), with its length limits kept. */
class AxiosFetcher implements Fetcher {
  readonly #http: AxiosInstance;
  readonly #timeoutMs: number;

  constructor(http: AxiosInstance, timeoutMs: number) {
    this.#http = http;
    this.#timeoutMs = timeoutMs;
  }

  downloadBytes(url: string, maxLength: number): Promise<Buffer> {
    return fetchBytes(this.#http, url, maxLength, this.#timeoutMs);
  }

  async downloadFile<T>(url: string, maxLength: number, handler: (file: string) => Promise<T>): Promise<T> {
    const bytes = await this.downloadBytes(url, maxLength);
    const dir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'outpost-tuf-'));
    try {
      const file = path.join(dir, 'download');
      fs.writeFileSync(file, bytes, { mode: 0o600 });
      return await handler(file);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** GET into memory, never more than `maxLength` bytes (endless data); HTTP errors as tuf-js expects. */
async function fetchBytes(http: AxiosInstance, url: string, maxLength: number, timeoutMs: number): Promise<Buffer> {
  const response = await http.get<ArrayBuffer>(url, {
    responseType: 'arraybuffer',
    maxContentLength: maxLength,
    timeout: timeoutMs,
    validateStatus: () => true,
  });
  if (response.status < 200 || response.status > 299) throw new DownloadHTTPError(`GET ${url}: HTTP ${response.status}`, response.status);
  return Buffer.from(response.data);
}

function sha256Of(info: TargetFile): string {
  const hash = info.hashes.sha256;
  if (!hash) throw verifyError(`${info.path} has no SHA-256 in the signed metadata`, null);
  return hash;
}

function isJsonFile(file: string): boolean {
  try {
    JSON.parse(fs.readFileSync(file, 'utf8'));
    return true;
  } catch {
    return false;
  }
}

function verifyError(what: string, cause: unknown): OutpostError {
  const reason = cause === null ? '' : `: ${axios.isAxiosError(cause) ? cause.message : describeError(cause)}`;
  return new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: ${what}${reason}.`, { cause });
}
