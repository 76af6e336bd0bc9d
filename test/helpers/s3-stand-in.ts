/**
 * A stand-in for an S3-compatible object store (MinIO, Ceph, R2, S3 itself), in memory on loopback,
 * for the release tool's bucket tests: only the calls `tools/release/bucket-sync.ts` makes, path-style
 * (`/<bucket>/<key>`): PutObject, GetObject (single byte ranges), HeadObject, DeleteObject and
 * ListObjectsV2. A request that writes or lists must carry a SigV4 Authorization header naming the
 * stand-in's access key, with x-amz-date and x-amz-content-sha256: their presence is checked, not the
 * signature. Reads are anonymous, as from a public-read bucket that agents download from.
 *
 * It records every completed write in order (`writes`), and can refuse writes (`refuse`) or hold one
 * unanswered (`hold`), so a test can cut a publish at a chosen point.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredObject {
  readonly bytes: Buffer;
  readonly contentType: string | undefined;
  readonly cacheControl: string | undefined;
  readonly etag: string;
}

export interface Write {
  readonly method: 'PUT' | 'DELETE';
  readonly key: string;
}

/** How many keys one ListObjectsV2 page holds at most: small, so that paging is exercised. */
const LIST_PAGE = 50;

export class S3StandIn {
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly objects = new Map<string, StoredObject>();
  readonly writes: Write[] = [];
  readonly #server: http.Server;
  #refuse: ((key: string) => boolean) | undefined;
  #held: { matches: (key: string) => boolean; reached: () => void } | undefined;
  readonly #heldRequests: http.ServerResponse[] = [];

  private constructor(bucket: string, accessKeyId: string) {
    this.bucket = bucket;
    this.accessKeyId = accessKeyId;
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => reply(res, 500, errorXml('InternalError', String(error))));
    });
  }

  /** Starts on a free loopback port; stopped when the test ends. */
  static async start(t: { after: (fn: () => Promise<void>) => void }, options: { bucket: string; accessKeyId: string }): Promise<S3StandIn> {
    const standIn = new S3StandIn(options.bucket, options.accessKeyId);
    await new Promise<void>((resolve) => standIn.#server.listen(0, '127.0.0.1', resolve));
    t.after(() => standIn.close());
    return standIn;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Writes of matching keys are answered 500 InternalError (every retry too) until `refuse(undefined)`. */
  refuse(matches: ((key: string) => boolean) | undefined): void {
    this.#refuse = matches;
  }

  /** The first PUT of a matching key is left unanswered; resolves once it has arrived. */
  hold(matches: (key: string) => boolean): Promise<void> {
    return new Promise((reached) => {
      this.#held = { matches, reached };
    });
  }

  /** The object's bytes as text, or undefined. */
  text(key: string): string | undefined {
    return this.objects.get(key)?.bytes.toString('utf8');
  }

  async close(): Promise<void> {
    for (const res of this.#heldRequests.splice(0)) res.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = rest.map(decodeURIComponent).join('/');
    const body = await readBody(req);
    if (bucket !== this.bucket) return reply(res, 404, errorXml('NoSuchBucket', `The specified bucket does not exist: ${bucket}`));
    const method = req.method ?? 'GET';
    const writes = method === 'PUT' || method === 'DELETE' || key === '';
    if (writes) {
      const refused = this.#authorization(req);
      if (refused) return reply(res, 403, errorXml(refused, 'The stand-in refused the request'));
    }
    if (key === '' && method === 'GET' && url.searchParams.get('list-type') === '2') return this.#list(url.searchParams, res);
    if (method === 'PUT') {
      if (this.#held?.matches(key)) {
        this.#held.reached();
        this.#held = undefined;
        this.#heldRequests.push(res);
        return;
      }
      if (this.#refuse?.(key)) return reply(res, 500, errorXml('InternalError', 'The stand-in refuses this write'));
      const etag = `"${createHash('md5').update(body).digest('hex')}"`;
      this.objects.set(key, { bytes: body, contentType: header(req, 'content-type'), cacheControl: header(req, 'cache-control'), etag });
      this.writes.push({ method, key });
      res.writeHead(200, { ETag: etag }).end();
      return;
    }
    if (method === 'DELETE') {
      if (this.#refuse?.(key)) return reply(res, 500, errorXml('InternalError', 'The stand-in refuses this write'));
      this.objects.delete(key);
      this.writes.push({ method, key });
      res.writeHead(204).end();
      return;
    }
    if (method === 'GET' || method === 'HEAD') return this.#read(key, req, res, method === 'HEAD');
    reply(res, 405, errorXml('MethodNotAllowed', `${method} is not one of the stand-in's calls`));
  }

  /** The name of the S3 error for a write without credentials of this stand-in, or null when they are there. */
  #authorization(req: http.IncomingMessage): string | null {
    const auth = header(req, 'authorization') ?? '';
    const credential = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/[^/]+\/s3\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/.exec(auth);
    if (!credential || !header(req, 'x-amz-date') || !header(req, 'x-amz-content-sha256')) return 'AccessDenied';
    return credential[1] === this.accessKeyId ? null : 'InvalidAccessKeyId';
  }

  #list(params: URLSearchParams, res: http.ServerResponse): void {
    const prefix = params.get('prefix') ?? '';
    const after = params.get('continuation-token') ?? '';
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
    const page = keys.slice(0, LIST_PAGE);
    const truncated = keys.length > page.length;
    const contents = page
      .map((k) => {
        const object = this.objects.get(k) as StoredObject;
        return `<Contents><Key>${escapeXml(k)}</Key><Size>${object.bytes.length}</Size><ETag>${escapeXml(object.etag)}</ETag><LastModified>2026-01-01T00:00:00.000Z</LastModified><StorageClass>STANDARD</StorageClass></Contents>`;
      })
      .join('');
    const next = truncated ? `<NextContinuationToken>${escapeXml(page.at(-1) as string)}</NextContinuationToken>` : '';
    reply(res, 200, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${this.bucket}</Name><Prefix>${escapeXml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${LIST_PAGE}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${next}${contents}</ListBucketResult>`);
  }

  #read(key: string, req: http.IncomingMessage, res: http.ServerResponse, headOnly: boolean): void {
    const object = this.objects.get(key);
    if (!object) {
      reply(res, 404, errorXml('NoSuchKey', 'The specified key does not exist.'));
      return;
    }
    const headers = { ETag: object.etag, 'Content-Type': object.contentType ?? 'binary/octet-stream', ...(object.cacheControl && { 'Cache-Control': object.cacheControl }), 'Accept-Ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(header(req, 'range') ?? '');
    const size = object.bytes.length;
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(range[2] ? Number(range[2]) : size - 1, size - 1);
      if (start >= size || start > end) {
        reply(res, 416, errorXml('InvalidRange', 'The requested range is not satisfiable'));
        return;
      }
      res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${size}` });
      res.end(headOnly ? undefined : object.bytes.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': size });
    res.end(headOnly ? undefined : object.bytes);
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function reply(res: http.ServerResponse, status: number, xml: string): void {
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(xml) }).end(xml);
}

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error>`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
