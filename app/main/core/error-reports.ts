import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorReport, REPORT_MAX_BYTES } from '../../common/reports.js';
import { appendLineDurable, removeStaleTempFiles, writeFileAtomic } from '../../base/durable-file.js';
import { describeError, ErrorCode, errnoCode, OutpostError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import type { ReportSender, SendResult } from './report-sender.js';

/**
 * Codes the reporter logs under. They live here until errors.ts takes them over (never rename one).
 */
export const ReportBufferCode = {
  /** A report that fails its own schema: a bug in the code that reported it. Logged, never sent. */
  INVALID: 'ERR_REPORT_INVALID',
  /** The buffer file (or its drop counter) could not be read or written. */
  BUFFER_IO: 'ERR_REPORT_BUFFER_IO',
  /** Lines of the buffer that are not reports (torn by a kill, or damaged): skipped. */
  BUFFER_DAMAGED: 'ERR_REPORT_BUFFER_DAMAGED',
  /** The buffer was full: the oldest reports were dropped (counted, and told to the backend later). */
  DROPPED: 'ERR_REPORT_DROPPED',
  /** The backend refused a report for good (HTTP 4xx): dropped. */
  REFUSED: 'ERR_REPORT_REFUSED',
} as const;

export type ReportScalar = string | number | boolean | null;
/** Short facts about the error. `undefined` entries are left out (so `{ pid: maybePid }` works). */
export type ReportContext = Readonly<Record<string, ReportScalar | undefined>>;

export interface ReportIdentity {
  readonly agent_id: string;
  readonly agent_version: string;
  readonly state: string;
}

export interface ReportLimits {
  readonly maxBytes: number;
  readonly maxCount: number;
}

export const DEFAULT_REPORT_LIMITS: ReportLimits = { maxBytes: 1024 * 1024, maxCount: 1_000 };

export interface ErrorReporterOptions {
  /** `<storage>/error_reports.jsonl`: the buffer of reports the backend has not taken yet. */
  readonly file: string;
  /** Read when a report is made, so it carries the state of that moment. */
  readonly identity: () => ReportIdentity;
  readonly send: ReportSender;
  readonly log: Logger;
  readonly now: () => Date;
  readonly limits?: ReportLimits;
  readonly newId?: () => string;
}

export interface FlushResult {
  /** Taken by the backend (stored now, or a duplicate of one stored before). */
  readonly sent: number;
  /** Refused by the backend for good (4xx) and removed. */
  readonly dropped: number;
  /** Still buffered: the backend could not be reached for these. */
  readonly remaining: number;
}

/** Context keys that may name a secret. Their values never leave the machine, whatever the caller passed. */
const SECRET_KEY = /secret|token|password|key|proof|nonce|authorization|cookie/i;
/** Added by the reporter to the first report delivered after drops: how many the backend never saw. */
export const DROPS_KEY = 'reports_dropped';
const MAX_CONTEXT_ENTRIES = 50;
const MAX_TEXT_CHARS = 2_000;
/** During a long flush, persist the progress this often, so a crash re-sends few (harmless) duplicates. */
const FLUSH_CHECKPOINT_EVERY = 100;
/** How many damaged line numbers a log line lists. */
const LISTED_LINES = 20;

interface Entry {
  readonly report: ErrorReport;
  /** The JSON and its newline, as in the file. */
  readonly line: string;
  readonly bytes: number;
}

type Delivery = 'delivered' | 'refused' | 'retry';

/**
 * The one way the agent reports an error to the backend. `report()` sends at once; if the backend
 * cannot be reached, the report goes to a bounded buffer file that `flush()` (called by the agent's
 * timer) drains, oldest first, one at a time.
 *
 * The buffer is JSON lines, each appended with open('a') + write + fsync, so a SIGKILL leaves at most
 * one torn last line, which the next reader skips (and logs). Every other change (dropping the
 * oldest when full, removing delivered reports) rewrites the kept lines atomically. An in-memory
 * copy of the valid lines mirrors the file, read once at construction (and again after a failed
 * read), so an append costs one small write and `pending` is always known.
 *
 * Reports dropped because the buffer was full are counted in a sidecar file next to the buffer
 * (`error_reports.dropped`, `{"unreported":N}`, written atomically), not in a header line: the
 * buffer stays "one report per line" for any reader, and the count changes rarely. The sidecar is
 * written before the buffer is trimmed, and cleared only after the backend accepted the report that
 * carried the count as `context.reports_dropped`: a crash in between over-counts, never hides a loss.
 *
 * All file work and all sending run one at a time on a promise chain: report() and flush() may
 * overlap, and the drop count must ride on exactly one delivered report. Once a send fails for a
 * retryable reason, report() buffers without trying until a flush gets through: no point waiting
 * for a timeout per report while the backend is down.
 */
export class ErrorReporter {
  readonly #options: ErrorReporterOptions;
  readonly #limits: ReportLimits;
  readonly #newId: () => string;
  readonly #dropsFile: string;
  #entries: readonly Entry[] = [];
  #bytes = 0;
  /** Whether #entries mirrors the file; false after a read failed (tried again at the next use). */
  #loaded = false;
  /** The file holds damaged lines or a torn tail: the next change rewrites it instead of appending. */
  #damaged = false;
  #unreportedDrops = 0;
  #backendDown = false;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(options: ErrorReporterOptions) {
    const limits = options.limits ?? DEFAULT_REPORT_LIMITS;
    if (!(Number.isInteger(limits.maxCount) && limits.maxCount >= 1 && Number.isInteger(limits.maxBytes) && limits.maxBytes >= 1)) {
      throw new OutpostError(ErrorCode.INTERNAL, `Invalid error report limits ${JSON.stringify(limits)}: positive integers expected.`);
    }
    this.#options = options;
    this.#limits = limits;
    this.#newId = options.newId ?? randomUUID;
    const { dir, name, ext } = path.parse(options.file);
    this.#dropsFile = path.join(dir, `${ext === '.jsonl' ? name : `${name}${ext}`}.dropped`);
    this.#load();
  }

  /** How many reports wait in the buffer. */
  get pending(): number {
    return this.#entries.length;
  }

  /** How many reports were dropped from a full buffer without the backend having been told yet. */
  get unreportedDrops(): number {
    return this.#unreportedDrops;
  }

  /**
   * Reports an error: sends it now or buffers it. Never rejects; whatever goes wrong is logged. The
   * report's time and state are taken now, not when it is finally sent.
   */
  report(code: string, message: string, context: ReportContext = {}): Promise<void> {
    let report: ErrorReport | null;
    try {
      report = this.#build(code, message, context);
    } catch (error) {
      this.#options.log.error(`error report ${code} not made: ${describeError(error)}`, { code: ReportBufferCode.INVALID });
      return Promise.resolve();
    }
    if (report === null) return Promise.resolve();
    const built = report;
    return this.#serial(async () => {
      if (!this.#backendDown && (await this.#deliver(built)) !== 'retry') return;
      this.#append(built);
    }, () => undefined);
  }

  /** Sends the buffered reports, oldest first; stops at the first retryable failure. Never rejects. */
  flush(): Promise<FlushResult> {
    return this.#serial(
      () => this.#flush(),
      () => ({ sent: 0, dropped: 0, remaining: this.pending }),
    );
  }

  /** Runs `task` after everything queued before it; a bug in it is logged and `fallback()` returned. */
  #serial<T>(task: () => Promise<T>, fallback: () => T): Promise<T> {
    const run = this.#chain.then(task).catch((error: unknown) => {
      // Only a bug gets here (every expected failure is handled where it happens); keep the chain alive.
      this.#options.log.error(`error reporter failed unexpectedly: ${describeError(error)}`, { code: ErrorCode.INTERNAL });
      return fallback();
    });
    this.#chain = run;
    return run;
  }

  #build(code: string, message: string, context: ReportContext): ErrorReport | null {
    const { log } = this.#options;
    const kept: Record<string, ReportScalar> = {};
    const scrubbed: string[] = [];
    for (const [key, value] of Object.entries(context)) {
      if (value === undefined) continue;
      if (SECRET_KEY.test(key)) scrubbed.push(key);
      else kept[key] = typeof value === 'string' ? clip(value) : value;
    }
    if (scrubbed.length > 0) {
      // The key names are safe to log; their values are not, and go nowhere.
      log.warn(`error report ${code}: left out context keys that may hold secrets: ${scrubbed.join(', ')}`, { keys: scrubbed });
    }
    const identity = this.#options.identity();
    const candidate = {
      id: this.#newId(),
      time: this.#options.now().toISOString(),
      agent_id: identity.agent_id,
      agent_version: identity.agent_version,
      state: identity.state,
      code,
      message: clip(message),
      context: kept,
    };
    const problem = problemWith(candidate);
    if (problem !== null) {
      log.error(`error report ${code} not sent: ${problem} (a bug in the code that reported it)`, { code: ReportBufferCode.INVALID });
      return null;
    }
    return candidate;
  }

  /** One send; the drop count rides along when there is one. */
  async #deliver(report: ErrorReport): Promise<Delivery> {
    const { log, send } = this.#options;
    const drops = this.#unreportedDrops;
    const carrying = drops > 0 ? withDrops(report, drops) : null;
    let result: SendResult;
    try {
      result = await send.send(carrying ?? report);
    } catch (error) {
      if (!this.#backendDown) log.warn(`backend unreachable, buffering error reports until a flush gets through: ${describeError(error)}`);
      else log.debug(`backend still unreachable: ${describeError(error)}`);
      this.#backendDown = true;
      return 'retry';
    }
    if (this.#backendDown) log.info('backend reachable again');
    this.#backendDown = false;
    if (result.outcome === 'refused') {
      log.warn(`the backend refused error report ${report.id} (${report.code}) for good, dropping it: ${result.reason}`, {
        code: ReportBufferCode.REFUSED,
      });
      return 'refused';
    }
    // A duplicate means the backend kept an earlier copy, maybe one without the count: keep counting.
    if (carrying && result.outcome === 'accepted') {
      this.#setDrops(this.#unreportedDrops - drops);
      log.info(`told the backend that ${drops} error report(s) were dropped from a full buffer`);
    }
    return 'delivered';
  }

  async #flush(): Promise<FlushResult> {
    if (!this.#ensureLoaded()) return { sent: 0, dropped: 0, remaining: 0 };
    const entries = this.#entries;
    let sent = 0;
    let refused = 0;
    let done = 0;
    for (const entry of entries) {
      const outcome = await this.#deliver(entry.report);
      if (outcome === 'retry') break;
      if (outcome === 'refused') refused++;
      else sent++;
      done++;
      if (done % FLUSH_CHECKPOINT_EVERY === 0) this.#tryRewrite(entries.slice(done));
    }
    if (done > 0) this.#tryRewrite(entries.slice(done));
    return { sent, dropped: refused, remaining: this.pending };
  }

  #append(report: ErrorReport): void {
    const { log, file } = this.#options;
    const lost = (why: string) =>
      log.error(`error report ${report.id} (${report.code}) lost: ${why}`, { code: ReportBufferCode.BUFFER_IO, file, message: report.message });
    if (!this.#ensureLoaded()) {
      lost(`the buffer ${file} cannot be read`);
      return;
    }
    const line = `${JSON.stringify(report)}\n`;
    const entry: Entry = { report, line, bytes: Buffer.byteLength(line) };
    const { maxBytes, maxCount } = this.#limits;
    if (entry.bytes > maxBytes) {
      // Dropping everything else would not make room: drop this one alone.
      this.#countDrops(1, `a ${entry.bytes}-byte report does not fit a buffer of ${maxBytes} bytes`);
      return;
    }
    let first = 0;
    let count = this.#entries.length;
    let bytes = this.#bytes;
    while (count + 1 > maxCount || bytes + entry.bytes > maxBytes) {
      bytes -= (this.#entries[first] as Entry).bytes;
      count--;
      first++;
    }
    const next = [...this.#entries.slice(first), entry];
    try {
      if (first > 0) {
        const before = this.#unreportedDrops;
        // Count first: a crash between the two writes over-counts; the other order would hide drops.
        this.#setDrops(before + first);
        try {
          this.#rewrite(next);
        } catch (error) {
          this.#setDrops(before);
          throw error;
        }
        log.warn(
          `error report buffer full (${maxCount} reports, ${maxBytes} bytes): dropped the ${first} oldest; ${this.#unreportedDrops} dropped report(s) not yet told to the backend`,
          { code: ReportBufferCode.DROPPED, dropped: first },
        );
      } else if (this.#damaged) {
        this.#rewrite(next);
      } else {
        appendLineDurable(file, line);
        this.#entries = next;
        this.#bytes += entry.bytes;
      }
    } catch (error) {
      // A failed append may have left a partial line: rewrite before the next append.
      this.#damaged = true;
      lost(`cannot write ${file}: ${errnoCode(error) ?? describeError(error)}`);
    }
  }

  #countDrops(count: number, why: string): void {
    this.#setDrops(this.#unreportedDrops + count);
    this.#options.log.warn(`dropped ${count} error report(s): ${why}; ${this.#unreportedDrops} dropped report(s) not yet told to the backend`, {
      code: ReportBufferCode.DROPPED,
      dropped: count,
    });
  }

  /** Updates the count in memory, and on disk if it can (a failure is logged: it only risks the count). */
  #setDrops(count: number): void {
    this.#unreportedDrops = Math.max(0, count);
    try {
      writeFileAtomic(this.#dropsFile, `${JSON.stringify({ unreported: this.#unreportedDrops })}\n`);
    } catch (error) {
      this.#options.log.error(`cannot save the dropped-report count to ${this.#dropsFile}: ${errnoCode(error) ?? describeError(error)}`, {
        code: ReportBufferCode.BUFFER_IO,
      });
    }
  }

  #rewrite(entries: readonly Entry[]): void {
    writeFileAtomic(this.#options.file, entries.map((entry) => entry.line).join(''));
    this.#entries = entries;
    this.#bytes = entries.reduce((sum, entry) => sum + entry.bytes, 0);
    this.#damaged = false;
  }

  /** After a flush: a failure keeps the delivered reports on disk, and they are re-sent as duplicates. */
  #tryRewrite(entries: readonly Entry[]): void {
    try {
      this.#rewrite(entries);
    } catch (error) {
      this.#options.log.error(`cannot remove delivered error reports from ${this.#options.file}: ${errnoCode(error) ?? describeError(error)}`, {
        code: ReportBufferCode.BUFFER_IO,
      });
    }
  }

  #ensureLoaded(): boolean {
    if (!this.#loaded) this.#load();
    return this.#loaded;
  }

  /** Reads the buffer and the drop count. Never throws: a failure is logged, and tried again later. */
  #load(): void {
    const { file, log } = this.#options;
    removeStaleTempFiles(file);
    removeStaleTempFiles(this.#dropsFile);
    this.#unreportedDrops = readDrops(this.#dropsFile, log);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') {
        log.error(`cannot read the error report buffer ${file}: ${errnoCode(error) ?? describeError(error)}`, { code: ReportBufferCode.BUFFER_IO });
        return;
      }
      text = '';
    }
    const lines = text.split('\n');
    // After the last newline: '' for a complete file, else a line torn by an interrupted append.
    const tail = lines.pop() ?? '';
    const entries: Entry[] = [];
    const bad: number[] = [];
    lines.forEach((json, index) => {
      const entry = parseEntry(json);
      if (entry) entries.push(entry);
      else bad.push(index + 1);
    });
    if (tail !== '') bad.push(lines.length + 1);
    if (bad.length > 0) {
      const listed = bad.slice(0, LISTED_LINES).join(', ') + (bad.length > LISTED_LINES ? ', …' : '');
      log.warn(
        `skipped ${bad.length} line(s) of ${file} that are not valid error reports (line ${listed}${tail !== '' ? `; line ${lines.length + 1} was torn by an interrupted write` : ''}); they are not sent and go at the next rewrite`,
        { code: ReportBufferCode.BUFFER_DAMAGED, lines: bad.slice(0, LISTED_LINES) },
      );
    }
    this.#entries = entries;
    this.#bytes = entries.reduce((sum, entry) => sum + entry.bytes, 0);
    this.#damaged = bad.length > 0;
    this.#loaded = true;
  }
}

function parseEntry(json: string): Entry | null {
  const line = `${json}\n`;
  const bytes = Buffer.byteLength(line);
  if (bytes > REPORT_MAX_BYTES) return null;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  const parsed = ErrorReport.safeParse(value);
  return parsed.success ? { report: parsed.data, line, bytes } : null;
}

function readDrops(file: string, log: Logger): number {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') log.error(`cannot read ${file}: ${errnoCode(error) ?? describeError(error)}`, { code: ReportBufferCode.BUFFER_IO });
    return 0;
  }
  try {
    const count = (JSON.parse(text) as { unreported?: unknown }).unreported;
    if (typeof count === 'number' && Number.isSafeInteger(count) && count >= 0) return count;
  } catch {
    // garbage: fall through
  }
  log.warn(`ignored the damaged dropped-report count in ${file}`, { code: ReportBufferCode.BUFFER_DAMAGED });
  return 0;
}

/** Why the report breaks the contract, or null when it does not. */
function problemWith(report: ErrorReport): string | null {
  const parsed = ErrorReport.safeParse(report);
  if (!parsed.success) {
    return `it does not match the report schema (${parsed.error.issues.map((issue) => `${issue.path.join('.') || 'report'}: ${issue.message}`).join('; ')})`;
  }
  const bytes = Buffer.byteLength(JSON.stringify(report)) + 1;
  return bytes > REPORT_MAX_BYTES ? `it is ${bytes} bytes, more than ${REPORT_MAX_BYTES}` : null;
}

/** The report with the drop count added, or null if there is no room for it (it waits for the next). */
function withDrops(report: ErrorReport, drops: number): ErrorReport | null {
  if (Object.keys(report.context).length >= MAX_CONTEXT_ENTRIES) return null;
  const carrying = { ...report, context: { ...report.context, [DROPS_KEY]: drops } };
  return problemWith(carrying) === null ? carrying : null;
}

/** Long texts are cut rather than the whole report refused: the start of a message says the most. */
function clip(text: string): string {
  return text.length > MAX_TEXT_CHARS ? `${text.slice(0, MAX_TEXT_CHARS - 1)}…` : text;
}
