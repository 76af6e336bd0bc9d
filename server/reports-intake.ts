import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import type { z } from 'zod';
import { ErrorReport, type ReportAck } from '../app/common/reports.js';

/** The largest request body accepted (a report is at most REPORT_MAX_BYTES; this leaves room). */
export const REPORT_BODY_MAX_BYTES = 64 * 1024;

export interface ReportsIntakeOptions {
  /** The append-only JSON Lines file: one `{"received_at":..., "report":{...}}` per line. */
  readonly file: string;
  readonly log: (line: string) => void;
  readonly now: () => Date;
}

/**
 * `POST /reports`: validates an error report and appends it to the reports file, once per report
 * id (an agent re-sends what it could not confirm, so duplicates are normal and answered as such).
 * The file is only ever appended to; the ids already in it are loaded at start, so de-duplication
 * survives a restart.
 */
export class ReportsIntake {
  readonly #options: ReportsIntakeOptions;
  readonly #file: fs.promises.FileHandle;
  readonly #ids: Set<string>;
  /** Stores happen one at a time: lines never interleave, and a duplicate is decided after the first copy is on disk. */
  #queue: Promise<unknown> = Promise.resolve();
  /** The file ended in a torn line (a crash mid-write): the next line must start on a fresh line. */
  #needsNewline: boolean;

  private constructor(options: ReportsIntakeOptions, file: fs.promises.FileHandle, ids: Set<string>, needsNewline: boolean) {
    this.#options = options;
    this.#file = file;
    this.#ids = ids;
    this.#needsNewline = needsNewline;
  }

  static async open(options: ReportsIntakeOptions): Promise<ReportsIntake> {
    await fs.promises.mkdir(path.dirname(options.file), { recursive: true });
    // Reports name agents and their errors: readable by the server's user only.
    const file = await fs.promises.open(options.file, 'a+', 0o600);
    try {
      const { ids, skipped, endsWithNewline } = await loadIds(options.file, file);
      if (skipped > 0) options.log(`reports: skipped ${skipped} unreadable line(s) in ${options.file} (a torn last line is left by a crash mid-write)`);
      options.log(`reports: ${ids.size} report(s) already stored in ${options.file}`);
      return new ReportsIntake(options, file, ids, !endsWithNewline);
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  /** How many distinct reports the file holds. */
  get stored(): number {
    return this.#ids.size;
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
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
    const line = `${this.#needsNewline ? '\n' : ''}${JSON.stringify({ received_at: this.#options.now().toISOString(), report })}\n`;
    try {
      await this.#file.appendFile(line, 'utf8');
      // On disk before the agent is told: it deletes its copy once acknowledged.
      await this.#file.datasync();
    } catch (error) {
      // Part of the line may be on disk (disk full): start the next one on a fresh line.
      this.#needsNewline = true;
      throw new Error(`cannot append to the reports file ${this.#options.file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    this.#needsNewline = false;
    this.#ids.add(report.id);
    this.#options.log(`reports: stored ${report.id} (${report.code} from agent ${report.agent_id} ${report.agent_version})`);
    return false;
  }
}

/** The ids in the reports file; lines that are not a stored report (a torn last line) are counted and skipped. */
async function loadIds(name: string, file: fs.promises.FileHandle): Promise<{ ids: Set<string>; skipped: number; endsWithNewline: boolean }> {
  const ids = new Set<string>();
  let skipped = 0;
  const { size } = await file.stat();
  if (size === 0) return { ids, skipped, endsWithNewline: true };
  // Its own stream (not the append handle), read line by line: the file may be large.
  const lines = readline.createInterface({ input: fs.createReadStream(name, { encoding: 'utf8' }), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const id = storedId(line);
    if (id === undefined) skipped++;
    else ids.add(id);
  }
  const last = Buffer.alloc(1);
  await file.read(last, 0, 1, size - 1);
  return { ids, skipped, endsWithNewline: last[0] === 0x0a };
}

function storedId(line: string): string | undefined {
  try {
    const value: unknown = JSON.parse(line);
    const report = typeof value === 'object' && value !== null && 'report' in value ? value.report : undefined;
    const id = typeof report === 'object' && report !== null && 'id' in report ? report.id : undefined;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
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
