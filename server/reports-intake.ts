import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { z } from 'zod';
import { ErrorReport, type ReportAck } from '../app/common/reports.js';
import { fsyncDirectory } from '../app/base/durable-file.js';
import { streamJsonLines } from '../app/base/jsonl.js';
import type { OriginPolicy } from './origins.js';
import { PerKeyRateLimit } from './rate-limit.js';

/** The largest request body accepted (a report is at most REPORT_MAX_BYTES; this leaves room). */
export const REPORT_BODY_MAX_BYTES = 64 * 1024;

export const DEFAULT_MAX_REPORTS = 10_000;
export const DEFAULT_MAX_REPORTS_BYTES = 64 * 1024 * 1024;
/** An agent reports an error when one happens, not in a loop: a burst of 60, then one a second. */
export const DEFAULT_REPORTS_PER_MINUTE = 60;
/** The smallest byte bound: a quarter of it (what a trim frees, see #makeRoom) holds any stored line. */
export const MIN_REPORTS_MAX_BYTES = 1024 * 1024;

/** A stored line is a report (re-serialized, never longer than its body) in a small envelope. */
const STORED_LINE_MAX_BYTES = REPORT_BODY_MAX_BYTES + 1024;
/** A trim keeps the newest three quarters of each bound, so a full store is rewritten once per quarter, not per report. */
const KEEP_AFTER_TRIM = 3 / 4;

export interface ReportsIntakeOptions {
  /** The JSON Lines file: one `{"received_at":..., "report":{...}}` per line, oldest first. */
  readonly file: string;
  readonly log: (line: string) => void;
  readonly now: () => Date;
  /** The store's bounds (reports, and bytes of the file): past either, the oldest reports are dropped. */
  readonly maxReports: number;
  readonly maxBytes: number;
  /** Reports accepted per minute from one agent_id; more are answered 429 with Retry-After. */
  readonly perAgentPerMinute: number;
  /** Web pages whose requests are taken (agents send no Origin). */
  readonly origins: OriginPolicy;
}

/** A report in the file: its id, and the byte offset its line starts at. */
interface StoredReport {
  readonly id: string;
  start: number;
}

/**
 * `POST /reports`: validates an error report and appends it to the reports file, once per report
 * id (an agent re-sends what it could not confirm, so duplicates are normal and answered as such).
 * The ids in the file are loaded at start, so de-duplication survives a restart. What strangers can
 * cost is bounded: web pages are refused (OriginPolicy), each agent_id gets perAgentPerMinute, and
 * the file keeps at most maxReports reports and maxBytes bytes: beyond them the oldest are dropped
 * (in batches, see #makeRoom), counted in `dropped`. A dropped report's id is forgotten with it: its
 * agent deleted its copy when the report was acknowledged, so it does not come back.
 */
export class ReportsIntake {
  readonly #options: ReportsIntakeOptions;
  /** Replaced by a trim (the file is then a new one); appended to otherwise. */
  #file: fs.promises.FileHandle;
  readonly #ids: Set<string>;
  /** Oldest first, as in the file. */
  #reports: StoredReport[];
  /** Bytes in the file (unreadable lines included). */
  #size: number;
  #dropped = 0;
  readonly #rate: PerKeyRateLimit;
  /** Stores happen one at a time: lines never interleave, and a duplicate is decided after the first copy is on disk. */
  #queue: Promise<unknown> = Promise.resolve();
  /** The file ended in a torn line (a crash mid-write): the next line must start on a fresh line. */
  #needsNewline: boolean;

  private constructor(options: ReportsIntakeOptions, file: fs.promises.FileHandle, loaded: LoadedStore) {
    this.#options = options;
    this.#file = file;
    this.#ids = new Set(loaded.reports.map((report) => report.id));
    this.#reports = loaded.reports;
    this.#size = loaded.size;
    this.#needsNewline = !loaded.endsWithNewline;
    this.#rate = new PerKeyRateLimit({ perMinute: options.perAgentPerMinute, now: options.now });
  }

  static async open(options: ReportsIntakeOptions): Promise<ReportsIntake> {
    if (!Number.isInteger(options.maxReports) || options.maxReports < 1) throw new RangeError(`maxReports must be a positive integer, got ${options.maxReports}`);
    if (!Number.isInteger(options.maxBytes) || options.maxBytes < MIN_REPORTS_MAX_BYTES) throw new RangeError(`maxBytes must be an integer of at least ${MIN_REPORTS_MAX_BYTES}, got ${options.maxBytes}`);
    await fs.promises.mkdir(path.dirname(options.file), { recursive: true });
    // Reports name agents and their errors: readable by the server's user only.
    const file = await fs.promises.open(options.file, 'a+', 0o600);
    let intake: ReportsIntake | undefined;
    try {
      const loaded = await loadStore(options.file, file);
      if (loaded.skipped > 0) options.log(`reports: skipped ${loaded.skipped} unreadable line(s) in ${options.file} (a torn last line is left by a crash mid-write)`);
      options.log(`reports: ${loaded.reports.length} report(s) already stored in ${options.file}`);
      intake = new ReportsIntake(options, file, loaded);
      // A file already past the bounds (they were lowered, or it predates them) is trimmed now.
      await intake.#makeRoom(0);
      return intake;
    } catch (error) {
      await (intake ? intake.#file : file).close();
      throw error;
    }
  }

  /** How many distinct reports the file holds. */
  get stored(): number {
    return this.#reports.length;
  }

  /** How many reports were dropped since start to keep the store within its bounds. */
  get dropped(): number {
    return this.#dropped;
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this.#options.origins.allows(req.headers.origin)) {
      refuseUnread(req, res, 403, 'reports from web pages are refused unless their origin is allowed (outpost-server --allow-origin)');
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      replyJson(res, 405, { error: 'use POST' });
      return;
    }
    const mediaType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (mediaType !== 'application/json') {
      refuseUnread(req, res, 415, `Content-Type must be application/json (got ${mediaType ?? 'none'})`);
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > REPORT_BODY_MAX_BYTES) {
      refuseUnread(req, res, 413, `body larger than ${REPORT_BODY_MAX_BYTES} bytes`);
      return;
    }
    const body = await readBounded(req, REPORT_BODY_MAX_BYTES);
    if (body === 'too large') {
      refuseUnread(req, res, 413, `body larger than ${REPORT_BODY_MAX_BYTES} bytes`);
      return;
    }
    if (body === 'aborted') return;
    const parsed = parseReport(body);
    if (!parsed.ok) {
      replyJson(res, 400, { error: parsed.problem });
      return;
    }
    // Every valid report counts, duplicates too: the limit is on what an agent asks of the server.
    const { agent_id: agent } = parsed.report;
    const admission = this.#rate.take(agent);
    if (!admission.admitted) {
      const perMinute = this.#options.perAgentPerMinute;
      if (admission.firstRefusal) this.#options.log(`reports: agent ${agent} sends more than ${perMinute} report(s) a minute: answering 429 until it slows down`);
      res.setHeader('Retry-After', String(admission.retryAfterS));
      replyJson(res, 429, { error: `more than ${perMinute} reports a minute from agent ${agent}: retry after ${admission.retryAfterS} s` });
      return;
    }
    const duplicate = await this.#enqueue(parsed.report);
    replyJson(res, 202, { accepted: true, duplicate } satisfies ReportAck);
  }

  /** Waits for pending writes, then closes the file. */
  async close(): Promise<void> {
    await this.#queue.catch(() => undefined);
    await this.#file.close();
  }

  #enqueue(report: ErrorReport): Promise<boolean> {
    const stored = this.#queue.catch(() => undefined).then(() => this.#store(report));
    this.#queue = stored;
    return stored;
  }

  /** Appends the report unless its id is stored already; returns whether it was a duplicate. */
  async #store(report: ErrorReport): Promise<boolean> {
    if (this.#ids.has(report.id)) return true;
    const record = JSON.stringify({ received_at: this.#options.now().toISOString(), report });
    // Room for the line with both of its possible newlines; a trim may leave an empty file, which needs no first one.
    await this.#makeRoom(Buffer.byteLength(record) + 2);
    const line = `${this.#needsNewline ? '\n' : ''}${record}\n`;
    const start = this.#size + (this.#needsNewline ? 1 : 0);
    try {
      await this.#file.appendFile(line, 'utf8');
      // On disk before the agent is told: it deletes its copy once acknowledged.
      await this.#file.datasync();
    } catch (error) {
      // Part of the line may be on disk (disk full): start the next one on a fresh line.
      this.#needsNewline = true;
      this.#size = await this.#file.stat().then((stat) => stat.size, () => this.#size);
      throw new Error(`cannot append to the reports file ${this.#options.file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    this.#needsNewline = false;
    this.#size += Buffer.byteLength(line);
    this.#ids.add(report.id);
    this.#reports.push({ id: report.id, start });
    this.#options.log(`reports: stored ${report.id} (${report.code} from agent ${report.agent_id} ${report.agent_version})`);
    return false;
  }

  /**
   * Keeps the store within its bounds once `incoming` more bytes (a report's line, or 0 at start)
   * are added: if they would pass a bound, the oldest reports are dropped down to KEEP_AFTER_TRIM of
   * both bounds. The newest reports are the file's tail, so the trimmed file is that tail copied as
   * it is, to a temporary file renamed over the store.
   */
  async #makeRoom(incoming: number): Promise<void> {
    const { maxReports, maxBytes, file, log } = this.#options;
    const adding = incoming > 0 ? 1 : 0;
    if (this.#reports.length + adding <= maxReports && this.#size + incoming <= maxBytes) return;
    const keepReports = maxReports - Math.max(1, Math.floor(maxReports * (1 - KEEP_AFTER_TRIM)));
    const keepBytes = Math.floor(maxBytes * KEEP_AFTER_TRIM);
    let first = Math.max(0, this.#reports.length - keepReports);
    while (first < this.#reports.length && this.#size - (this.#reports[first]?.start ?? 0) > keepBytes) first++;
    const from = this.#reports[first]?.start ?? this.#size;
    try {
      await this.#replaceWithTail(from);
    } catch (error) {
      throw new Error(`cannot trim the reports file ${file} to its bounds: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const dropped = this.#reports.splice(0, first);
    for (const report of dropped) this.#ids.delete(report.id);
    for (const report of this.#reports) report.start -= from;
    this.#size -= from;
    if (this.#size === 0) this.#needsNewline = false;
    this.#dropped += dropped.length;
    log(
      `reports: the store reached its bounds (${maxReports} reports, ${maxBytes} bytes): dropped the oldest ${dropped.length} report(s), ${this.#dropped} since start; ${this.#reports.length} kept`,
    );
  }

  /** The file becomes its bytes from `from` on: written beside it and fsynced, then renamed over it. */
  async #replaceWithTail(from: number): Promise<void> {
    const { file } = this.#options;
    const temp = `${file}.trim.tmp`;
    try {
      await pipeline(fs.createReadStream(file, { start: from }), fs.createWriteStream(temp, { mode: 0o600, flush: true }));
    } catch (error) {
      await fs.promises.rm(temp, { force: true });
      throw error;
    }
    // Closed before the rename (Windows renames over an open file badly), reopened after: never an
    // append handle left on the replaced file, where acknowledged reports would be lost.
    await this.#file.close();
    try {
      await fs.promises.rename(temp, file);
    } catch (error) {
      await fs.promises.rm(temp, { force: true });
      this.#file = await fs.promises.open(file, 'a+', 0o600);
      throw error;
    }
    fsyncDirectory(path.dirname(file));
    this.#file = await fs.promises.open(file, 'a+', 0o600);
  }
}

interface LoadedStore {
  readonly reports: StoredReport[];
  readonly skipped: number;
  readonly size: number;
  readonly endsWithNewline: boolean;
}

/** The reports in the file, oldest first, each id once; lines that are not a stored report (a torn last line) are counted and skipped. */
async function loadStore(name: string, file: fs.promises.FileHandle): Promise<LoadedStore> {
  const reports: StoredReport[] = [];
  const ids = new Set<string>();
  let skipped = 0;
  for await (const line of streamJsonLines(name, STORED_LINE_MAX_BYTES)) {
    const id = storedId(line.value);
    if (id === undefined) skipped++;
    else if (!ids.has(id)) {
      ids.add(id);
      reports.push({ id, start: line.start });
    }
  }
  const { size } = await file.stat();
  if (size === 0) return { reports, skipped, size, endsWithNewline: true };
  const last = Buffer.alloc(1);
  await file.read(last, 0, 1, size - 1);
  return { reports, skipped, size, endsWithNewline: last[0] === 0x0a };
}

function storedId(value: unknown): string | undefined {
  const report = typeof value === 'object' && value !== null && 'report' in value ? value.report : undefined;
  const id = typeof report === 'object' && report !== null && 'id' in report ? report.id : undefined;
  return typeof id === 'string' ? id : undefined;
}

/** The body as a Buffer; 'too large' as soon as it passes `limit` (the rest is never read). */
function readBounded(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (result: Buffer | 'too large' | 'aborted') => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) finish('too large');
      else chunks.push(chunk);
    };
    const onEnd = () => finish(Buffer.concat(chunks, length));
    const onAbort = () => finish('aborted');
    const onClose = () => {
      if (!req.complete) finish('aborted');
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}

type Parsed = { ok: true; report: ErrorReport } | { ok: false; problem: string };

function parseReport(body: Buffer): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (error) {
    return { ok: false, problem: `malformed JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  const result = ErrorReport.safeParse(value);
  if (!result.success) return { ok: false, problem: `not a valid error report: ${describeIssues(result.error.issues)}` };
  return { ok: true, report: result.data };
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const shown = issues.slice(0, 5).map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(body)'}: ${issue.message}`);
  return shown.join('; ') + (issues.length > shown.length ? `; and ${issues.length - shown.length} more` : '');
}

/**
 * Answers without reading (the rest of) the body, and closes the connection afterwards: reading on
 * to keep the connection alive would let a client make the server swallow any amount of data.
 */
function refuseUnread(req: http.IncomingMessage, res: http.ServerResponse, status: number, error: string): void {
  req.pause();
  res.setHeader('Connection', 'close');
  res.once('finish', () => req.socket.destroySoon());
  replyJson(res, status, { error });
}

function replyJson(res: http.ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' }).end(text);
}
