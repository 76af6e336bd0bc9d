import fs from 'node:fs';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describeError } from '../../app/base/errors.js';
import { redactSecrets } from '../../app/base/redact.js';
import { ExitCode } from '../../app/common/exit-codes.js';
import { type FeedFile, feedFiles, headersOf, PHASES, phaseOf } from './feed-files.js';

/** Uploads in flight at once within a phase (the blobs of a release are many, mostly small). */
const PARALLEL = 8;

/**
 * Files up to this size are sent from memory, which the SDK retries after a transient failure (it
 * never retries a stream); a bigger one streams, and its failure fails the copy, which a re-run
 * resumes. At most PARALLEL of them in memory at once.
 */
const IN_MEMORY_MAX = 32 * 1024 * 1024;

/** Where the feed is copied: `--s3 s3://BUCKET/PREFIX`, and how the bucket is reached. */
export interface BucketLocation {
  readonly bucket: string;
  /** Keys are `<prefix>/<path in the feed>`; empty: at the bucket's root. */
  readonly prefix: string;
  /** An S3-compatible service (MinIO, Ceph, R2...): its URL, addressed path-style. Absent: AWS S3. */
  readonly endpoint?: string;
  /** Signed into every request; S3-compatible services mostly ignore it. */
  readonly region: string;
}

export interface SyncResult {
  readonly uploaded: number;
  readonly uploadedBytes: number;
  /** Published files the bucket had already. */
  readonly present: number;
  /** The timestamp version the bucket now serves. */
  readonly feedVersion: number;
  readonly deleted: number;
}

/**
 * A copy to the bucket that did not complete. `published` says whether the bucket's timestamp.json
 * had been replaced: if not, readers still see the previous feed, complete.
 */
export class BucketSyncError extends Error {
  readonly exitCode: ExitCode;
  readonly published: boolean;

  constructor(message: string, exitCode: ExitCode, published: boolean) {
    super(message);
    this.exitCode = exitCode;
    this.published = published;
  }
}

/** `s3://BUCKET[/PREFIX]` -> bucket and prefix; throws a sentence for anything else. */
export function parseBucketUrl(text: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(text);
  if (!match) throw new Error(`--s3 must be s3://BUCKET or s3://BUCKET/PREFIX, the bucket named by 3 to 63 lower-case letters, digits, dots and dashes (got "${text}")`);
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((part) => part === '.' || part === '..')) throw new Error(`--s3 prefix "${prefix}" may not hold . or .. parts`);
  return { bucket: match[1] as string, prefix };
}

/**
 * Brings a bucket up to the feed folder, in the order that never shows a reader a half-published
 * feed (feed-files.ts): every published file the bucket lacks, phase after phase, each phase complete
 * before the next begins, timestamp.json last. With `deleteRemoved` (prune), the files the folder no
 * longer has are removed from the bucket afterwards, once no current metadata names them. Run again
 * after a failure, it uploads only what is still missing: the bucket's listing says what is there,
 * and a published name never changes its bytes. Credentials come from the AWS SDK's usual chain
 * (environment, shared files, SSO, instance roles) and appear in no message.
 */
export async function syncFeedToBucket(feedDir: string, location: BucketLocation, options: { deleteRemoved: boolean }): Promise<SyncResult> {
  const files = feedFiles(feedDir);
  const timestampFile = files.find((f) => f.phase === 'timestamp');
  if (!timestampFile) throw new BucketSyncError(`${feedDir} has nothing published yet: nothing to copy to the bucket`, ExitCode.DATA, false);
  // Read once: the bytes uploaded last are those of the feed listed here.
  const timestamp = fs.readFileSync(timestampFile.absolute);
  const client = new S3Client({
    region: location.region,
    ...(location.endpoint && { endpoint: location.endpoint, forcePathStyle: true }),
    // Checksums only where S3 requires them: several S3-compatible services refuse the newer ones.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
  });
  const bucket = new Bucket(client, location);
  let published = false;
  try {
    const remote = await bucket.list();
    const remoteTimestamp = remote.has(timestampFile.relative) ? await bucket.get(timestampFile.relative) : null;
    const feedVersion = versionOf(timestamp);
    if (remoteTimestamp && !remoteTimestamp.equals(timestamp) && versionOf(remoteTimestamp) >= feedVersion) {
      throw new BucketSyncError(
        `${bucket.describe()} serves feed version ${versionOf(remoteTimestamp)}, this folder's is ${feedVersion}: the bucket was published from another feed folder (or a newer copy of this one). Nothing was uploaded; copy from that folder, or choose another prefix`,
        ExitCode.DATA,
        false,
      );
    }
    const missing: FeedFile[] = [];
    for (const file of files) {
      if (file.phase === 'timestamp') continue;
      const size = remote.get(file.relative);
      if (size === undefined) missing.push(file);
      else if (size !== file.size) {
        throw new BucketSyncError(
          `${bucket.describe()} holds ${file.relative} with ${size} bytes where this folder has ${file.size}: a published name never changes, so the bucket holds another feed. Nothing was uploaded; choose another prefix, or empty this one`,
          ExitCode.DATA,
          false,
        );
      }
    }
    let uploadedBytes = 0;
    for (const phase of PHASES.filter((p) => p !== 'timestamp')) {
      await inParallel(
        missing.filter((f) => f.phase === phase),
        async (file) => {
          const body = file.size <= IN_MEMORY_MAX ? await fs.promises.readFile(file.absolute) : fs.createReadStream(file.absolute);
          await bucket.put(file.relative, body, file.size);
          uploadedBytes += file.size;
        },
      );
    }
    const timestampChanged = !remoteTimestamp?.equals(timestamp);
    if (timestampChanged) await bucket.put(timestampFile.relative, timestamp, timestamp.length);
    published = true;

    let deleted = 0;
    if (options.deleteRemoved) {
      const local = new Set(files.map((f) => f.relative));
      // Only published files (never what else lies under the prefix), and never a root: agents walk the chain.
      const removed = [...remote.keys()].filter((key) => !local.has(key) && (phaseOf(key) === 'blob' || phaseOf(key) === 'metadata'));
      await inParallel(removed, async (key) => {
        await bucket.delete(key);
        deleted++;
      });
    }
    const uploaded = missing.length + (timestampChanged ? 1 : 0);
    return { uploaded, uploadedBytes: uploadedBytes + (timestampChanged ? timestamp.length : 0), present: files.length - uploaded, feedVersion, deleted };
  } catch (error) {
    if (error instanceof BucketSyncError) throw error;
    throw bucket.failure(error, published);
  } finally {
    client.destroy();
  }
}

/** The feed's keys in one bucket, under its prefix. */
class Bucket {
  readonly #client: S3Client;
  readonly #location: BucketLocation;

  constructor(client: S3Client, location: BucketLocation) {
    this.#client = client;
    this.#location = location;
  }

  describe(): string {
    const { bucket, prefix, endpoint } = this.#location;
    return `s3://${bucket}${prefix ? `/${prefix}` : ''}${endpoint ? ` at ${redactSecrets(endpoint)}` : ''}`;
  }

  /** Every key under the prefix (relative to it), with its size. */
  async list(): Promise<Map<string, number>> {
    const keys = new Map<string, number>();
    const prefix = this.#key('');
    let token: string | undefined;
    do {
      const page = await this.#client.send(new ListObjectsV2Command({ Bucket: this.#location.bucket, Prefix: prefix, ...(token && { ContinuationToken: token }) }));
      for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.set(object.Key.slice(prefix.length), object.Size ?? 0);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async get(relative: string): Promise<Buffer> {
    const answer = await this.#client.send(new GetObjectCommand({ Bucket: this.#location.bucket, Key: this.#key(relative) }));
    return Buffer.from((await answer.Body?.transformToByteArray()) ?? []);
  }

  async put(relative: string, body: Buffer | fs.ReadStream, length: number): Promise<void> {
    const { cacheControl, contentType } = headersOf(relative);
    await this.#client.send(new PutObjectCommand({ Bucket: this.#location.bucket, Key: this.#key(relative), Body: body, ContentLength: length, CacheControl: cacheControl, ContentType: contentType }));
  }

  async delete(relative: string): Promise<void> {
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#location.bucket, Key: this.#key(relative) }));
  }

  /** What an SDK error means to the operator, with the exit code that says it. */
  failure(error: unknown, published: boolean): BucketSyncError {
    const { name, code, status } = errorFacts(error);
    const where = this.describe();
    if (name === 'CredentialsProviderError') {
      return new BucketSyncError(`no AWS credentials for ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (any source of the AWS SDK's credential chain)`, ExitCode.NO_PERMISSION, published);
    }
    if (status === 401 || status === 403 || ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied'].includes(name)) {
      return new BucketSyncError(`${where} refused the credentials (${name}${status ? `, HTTP ${status}` : ''}): check the access key and its secret, and that they may list, read, write and delete under the prefix`, ExitCode.NO_PERMISSION, published);
    }
    if (name === 'NoSuchBucket') return new BucketSyncError(`${where}: the bucket ${this.#location.bucket} does not exist; create it (public read for the agents), or fix --s3`, ExitCode.NO_INPUT, published);
    const why = code ?? (status ? `HTTP ${status} ${name}` : name);
    return new BucketSyncError(`${where} could not be reached or refused a request (${why}: ${describeError(error)})`, ExitCode.UNAVAILABLE, published);
  }

  #key(relative: string): string {
    return this.#location.prefix ? `${this.#location.prefix}/${relative}` : relative;
  }
}

/** The parts of an SDK or network error that say what happened: its name, a system error code, an HTTP status. */
function errorFacts(error: unknown): { name: string; code: string | undefined; status: number | undefined } {
  const e = error as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; cause?: { code?: string }; errors?: Array<{ code?: string }> };
  return { name: e?.name ?? 'Error', code: e?.code ?? e?.cause?.code ?? e?.errors?.[0]?.code, status: e?.$metadata?.httpStatusCode };
}

/** The timestamp's version: the feed version agents see. */
function versionOf(timestamp: Buffer): number {
  const version = (JSON.parse(timestamp.toString('utf8')) as { signed?: { version?: unknown } }).signed?.version;
  if (typeof version !== 'number') throw new BucketSyncError('a timestamp.json without a version (damaged, or not a TUF timestamp)', ExitCode.DATA, false);
  return version;
}

/** Runs `fn` on every item, PARALLEL at a time; the first failure wins once the others in flight have settled. */
async function inParallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  if (failure) throw failure.error;
}
