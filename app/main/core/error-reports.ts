import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { type JsonLines, jsonLineOf, readJsonLines, tryParseJson } from '../../base/jsonl.js';
import { ErrorReport, REPORT_MAX_BYTES } from '../../common/reports.js';
import { appendLineDurable, removeStaleTempFiles, writeFileAtomic } from '../../base/durable-file.js';
import { describeError, ErrorCode, errnoCode, OutpostError } from '../../base/errors.js';
import { redactSecrets } from '../../base/redact.js';
import type { ReportCode } from '../../common/codes.js';
import type { Logger } from '../../base/logger.js';
import type { ReportSender, SendResult } from './report-sender.js';


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
/** During a long flush, remove the delivered reports from the file this often, so a crash re-sends few (harmless) duplicates. */
const FLUSH_CHECKPOINT_EVERY = 100;
/** A full buffer drops its oldest reports until this fraction of each limit is free: one rewrite makes room for many appends. */
const ROOM_MADE_WHEN_FULL = 0.1;
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
 * The one way the agent reports an error to the backend. Every report is written ahead: appended to a
 * bounded buffer file before its first send, and taken out of it only once the backend has stored it
 * (or refused it for good). A kill at any moment loses no report the caller was told about; the worst
 * it does is send one again, which the backend answers as a duplicate (it de-duplicates by id).
 *
 * The buffer is JSON lines, one report per line, each appended with open('a') + write + fsync, so a
 * SIGKILL leaves at most one torn last line, which the next reader skips (and logs). The updater
 * appends its reports the same way; the agent sends them at start. An in-memory
 * copy of the valid lines mirrors the file, read once at construction (and again after a failed
 * read), so an append costs one small write and `pending` is always known.
 *
 * No report costs a rewrite of the whole file:
 * - Delivered reports stay in the file, marked delivered in memory only, until the next compaction:
 *   every FLUSH_CHECKPOINT_EVERY deliveries and when a run of sends ends. When nothing undelivered is
 *   left, which is the usual case (the backend up, one report at a time), the file is emptied in
 *   place (truncate + fsync); otherwise the undelivered lines are rewritten atomically. A crash before
 *   a compaction re-sends delivered reports as duplicates, never loses one.
 * - A full buffer drops its oldest reports until a tenth of both limits is free again, in one atomic
 *   rewrite: the next reports are plain appends, so a buffer that stays full (the backend down for
 *   days) is rewritten once per tenth of its size, not once per report. Dropping early loses a few
 *   old reports sooner; keeping them would need a second file that every reader must understand.
 *
 * Reports dropped because the buffer was full are counted in a sidecar file next to the buffer
 * (`error_reports.dropped`, `{"unreported":N}`, written atomically), not in a header line: the
 * buffer stays "one report per line" for any reader, and the count changes rarely. The sidecar is
 * written before the buffer is trimmed, and cleared only after the backend accepted the report that
 * carried the count as `context.reports_dropped`: a crash in between over-counts, never hides a loss.
 *
 * File work is synchronous, so report() writes ahead at once and its caller never waits for the
 * network. Sending runs one report at a time, oldest first, on a promise chain, and the drop count
 * rides on exactly one delivered report. Once a send fails for a retryable reason, report() only
 * writes until a flush gets through: no point waiting for a timeout per report while the backend is
 * down. close() stops sending after a bounded flush; what is left waits in the file for the next start.
 */
export class ErrorReporter {
  readonly #options: ErrorReporterOptions;
  readonly #limits: ReportLimits;
  readonly #newId: () => string;
  readonly #dropsFile: string;
  /** The valid lines of the file, in order: delivered ones too, until the next compaction. */
  #entries: readonly Entry[] = [];
  /** The entries the backend has not taken yet. */
  readonly #undelivered = new Set<Entry>();
  #bytes = 0;
  /** Whether #entries mirrors the file; false after a read failed (tried again at the next use). */
  #loaded = false;
  /** The file holds damaged lines or a torn tail: the next change rewrites it instead of appending. */
  #damaged = false;
  #unreportedDrops = 0;
  #backendDown = false;
  #chain: Promise<unknown> = Promise.resolve();
  /** A run of sends that is queued and has not started: at most one waits, later requests share it. */
  #queuedSend: Promise<FlushResult> | undefined;
  /** Aborted when close() runs out of time: the send in flight is cut, and no other starts. */
  readonly #stopSending = new AbortController();
  #closing: Promise<void> | undefined;

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

  /** How many reports wait for the backend. */
  get pending(): number {
    return this.#undelivered.size;
  }

  /** How many reports were dropped from a full buffer without the backend having been told yet. */
  get unreportedDrops(): number {
    return this.#unreportedDrops;
  }

  /**
   * Reports an error: writes it to the buffer, then sends it (after any older ones) unless the
   * backend is known to be down or the reporter is closing. Resolves once the report is on disk
   * (or, if it cannot be written, once its one send is over); never rejects, whatever goes wrong is
   * logged. The report's time and state are taken now, not when it is finally sent.
   */
  report(code: ReportCode, message: string, context: ReportContext = {}): Promise<void> {
    let report: ErrorReport | null;
    try {
      report = this.#build(code, message, context);
    } catch (error) {
      this.#options.log.error(`error report ${code} not made: ${describeError(error)}`, { code: ErrorCode.REPORT_INVALID });
      return Promise.resolve();
    }
    if (report === null) return Promise.resolve();
    const unwritten = this.#writeAhead(report);
    if (unwritten !== null) return this.#sendUnwritten(report, unwritten);
    if (!this.#backendDown && !this.#closing) void this.#sendPending();
    return Promise.resolve();
  }

  /**
   * Sends the buffered reports, oldest first, after the sends queued before; stops at the first
   * retryable failure. Never rejects.
   */
  flush(): Promise<FlushResult> {
    return this.#sendPending();
  }

  /**
   * Stops sending: report() only writes from now on, and the reports still buffered get one last
   * flush of at most `timeoutMs` (the send in flight then is cut). Whatever is not delivered stays in
   * the file for the next start. Never rejects; calling it again returns the same promise.
   */
  close(timeoutMs: number): Promise<void> {
    this.#closing ??= (async () => {
      const timer = setTimeout(() => this.#stopSending.abort(), timeoutMs);
      let result: FlushResult;
      try {
        result = await this.#sendPending();
      } finally {
        clearTimeout(timer);
      }
      const { log } = this.#options;
      if (this.#stopSending.signal.aborted) log.warn(`stopped sending error reports: the ${timeoutMs} ms allowed at shutdown ran out`);
      else this.#stopSending.abort();
      if (result.remaining > 0) log.info(`${result.remaining} error report(s) stay buffered for the next start`);
    })();
    return this.#closing;
  }

  /** The queued run of sends, or a new one at the end of the chain. */
  #sendPending(): Promise<FlushResult> {
    if (this.#queuedSend) return this.#queuedSend;
    const run = this.#serial(
      () => {
        this.#queuedSend = undefined;
        return this.#sendAll();
      },
      () => ({ sent: 0, dropped: 0, remaining: this.pending }),
    );
    this.#queuedSend = run;
    return run;
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

  #build(code: ReportCode, message: string, context: ReportContext): ErrorReport | null {
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
      log.error(`error report ${code} not sent: ${problem} (a bug in the code that reported it)`, { code: ErrorCode.REPORT_INVALID });
      return null;
    }
    return candidate;
  }

  /** One send; the drop count rides along when there is one. */
  async #deliver(report: ErrorReport): Promise<Delivery> {
    const { log, send } = this.#options;
    const stop = this.#stopSending.signal;
    if (stop.aborted) return 'retry';
    const drops = this.#unreportedDrops;
    const carrying = drops > 0 ? withDrops(report, drops) : null;
    let result: SendResult;
    try {
      result = await send.send(carrying ?? report, stop);
    } catch (error) {
      if (stop.aborted) {
        log.info(`sending error report ${report.id} cut short by shutdown; it stays buffered`);
        return 'retry';
      }
      if (!this.#backendDown) log.warn(`backend unreachable, buffering error reports until a flush gets through: ${describeError(error)}`);
      else log.debug(`backend still unreachable: ${describeError(error)}`);
      this.#backendDown = true;
      return 'retry';
    }
    if (this.#backendDown) log.info('backend reachable again');
    this.#backendDown = false;
    if (result.outcome === 'refused') {
      log.warn(`the backend refused error report ${report.id} (${report.code}) for good, dropping it: ${result.reason}`, {
        code: ErrorCode.REPORT_REFUSED,
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

  /** Sends the undelivered reports oldest first, including those written while it runs. */
  async #sendAll(): Promise<FlushResult> {
    this.#ensureLoaded();
    let sent = 0;
    let refused = 0;
    let sinceCompaction = 0;
    for (let entry = this.#oldestUndelivered(); entry; entry = this.#oldestUndelivered()) {
      const outcome = await this.#deliver(entry.report);
      if (outcome === 'retry') break;
      if (outcome === 'refused') refused++;
      else sent++;
      this.#undelivered.delete(entry);
      if (++sinceCompaction === FLUSH_CHECKPOINT_EVERY) {
        this.#compact();
        sinceCompaction = 0;
      }
    }
    if (sinceCompaction > 0) this.#compact();
    return { sent, dropped: refused, remaining: this.pending };
  }

  #oldestUndelivered(): Entry | undefined {
    return this.#entries.find((entry) => this.#undelivered.has(entry));
  }

  /** A report that could not be written: one try to send it, else it is lost (and logged so). */
  #sendUnwritten(report: ErrorReport, why: string): Promise<void> {
    const { log, file } = this.#options;
    const lost = () => log.error(`error report ${report.id} (${report.code}) lost: ${why}`, { code: ErrorCode.REPORT_BUFFER_IO, file, message: report.message });
    if (this.#backendDown || this.#closing) {
      lost();
      return Promise.resolve();
    }
    return this.#serial(async () => {
      if ((await this.#deliver(report)) === 'retry') lost();
      else log.warn(`error report ${report.id} (${report.code}) went to the backend without a copy on disk: ${why}`, { code: ErrorCode.REPORT_BUFFER_IO, file });
    }, () => undefined);
  }

  /** Appends the report to the buffer (making room first if it is full); returns why it could not, or null. */
  #writeAhead(report: ErrorReport): string | null {
    const { file } = this.#options;
    if (!this.#ensureLoaded()) return `the buffer ${file} cannot be read`;
    const line = `${JSON.stringify(report)}\n`;
    const entry: Entry = { report, line, bytes: Buffer.byteLength(line) };
    const { maxBytes, maxCount } = this.#limits;
    if (entry.bytes > maxBytes) {
      // Dropping everything else would not make room: drop this one alone.
      this.#countDrops(1, `a ${entry.bytes}-byte report does not fit a buffer of ${maxBytes} bytes`);
      return null;
    }
    try {
      if (this.#entries.length + 1 > maxCount || this.#bytes + entry.bytes > maxBytes) {
        this.#makeRoom(entry);
      } else if (this.#damaged) {
        this.#rewrite([...this.#entries, entry]);
        this.#undelivered.add(entry);
      } else {
        appendLineDurable(file, line);
        this.#entries = [...this.#entries, entry];
        this.#bytes += entry.bytes;
        this.#undelivered.add(entry);
      }
      return null;
    } catch (error) {
      // A failed append may have left a partial line: rewrite before the next append.
      this.#damaged = true;
      return `cannot write ${file}: ${errnoCode(error) ?? describeError(error)}`;
    }
  }

  /**
   * The buffer is full: one rewrite without the delivered reports and, if that is not room enough,
   * without the oldest undelivered ones until a tenth of each limit is free. The oldest may be the one
   * being sent: if the backend takes it after all, it was counted as dropped (an over-count of one).
   */
  #makeRoom(entry: Entry): void {
    const { log } = this.#options;
    const { maxBytes, maxCount } = this.#limits;
    const kept = this.#entries.filter((e) => this.#undelivered.has(e));
    let bytes = kept.reduce((sum, e) => sum + e.bytes, 0);
    let dropped = 0;
    if (kept.length + 1 > maxCount || bytes + entry.bytes > maxBytes) {
      const countGoal = maxCount - Math.floor(maxCount * ROOM_MADE_WHEN_FULL);
      const bytesGoal = maxBytes - Math.floor(maxBytes * ROOM_MADE_WHEN_FULL);
      while (dropped < kept.length && (kept.length - dropped + 1 > countGoal || bytes + entry.bytes > bytesGoal)) {
        bytes -= (kept[dropped] as Entry).bytes;
        dropped++;
      }
    }
    const next = [...kept.slice(dropped), entry];
    const before = this.#unreportedDrops;
    // Count first: a crash between the two writes over-counts; the other order would hide drops.
    if (dropped > 0) this.#setDrops(before + dropped);
    try {
      this.#rewrite(next);
    } catch (error) {
      if (dropped > 0) this.#setDrops(before);
      throw error;
    }
    this.#undelivered.clear();
    for (const e of next) this.#undelivered.add(e);
    if (dropped > 0) {
      log.warn(
        `error report buffer full (${maxCount} reports, ${maxBytes} bytes): dropped the ${dropped} oldest, leaving a tenth free; ${this.#unreportedDrops} dropped report(s) not yet told to the backend`,
        { code: ErrorCode.REPORT_DROPPED, dropped },
      );
    }
  }

  #countDrops(count: number, why: string): void {
    this.#setDrops(this.#unreportedDrops + count);
    this.#options.log.warn(`dropped ${count} error report(s): ${why}; ${this.#unreportedDrops} dropped report(s) not yet told to the backend`, {
      code: ErrorCode.REPORT_DROPPED,
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
        code: ErrorCode.REPORT_BUFFER_IO,
      });
    }
  }

  #rewrite(entries: readonly Entry[]): void {
    writeFileAtomic(this.#options.file, entries.map((entry) => entry.line).join(''));
    this.#entries = entries;
    this.#bytes = entries.reduce((sum, entry) => sum + entry.bytes, 0);
    this.#damaged = false;
  }

  /**
   * Takes the delivered reports out of the file: emptied in place when none is left undelivered, else
   * rewritten. A failure keeps them on disk (marked delivered here, re-sent as duplicates after a restart).
   */
  #compact(): void {
    const { file, log } = this.#options;
    const kept = this.#entries.filter((entry) => this.#undelivered.has(entry));
    try {
      if (kept.length === 0) {
        emptyInPlace(file);
        this.#entries = [];
        this.#bytes = 0;
        this.#damaged = false;
      } else {
        this.#rewrite(kept);
      }
    } catch (error) {
      log.error(`cannot remove delivered error reports from ${file}: ${errnoCode(error) ?? describeError(error)}`, { code: ErrorCode.REPORT_BUFFER_IO });
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
    let lines: JsonLines<Entry>;
    try {
      lines = readJsonLines(file, parseEntry);
    } catch (error) {
      log.error(`cannot read the error report buffer ${file}: ${errnoCode(error) ?? describeError(error)}`, { code: ErrorCode.REPORT_BUFFER_IO });
      return;
    }
    const { entries, skipped: bad, tornTail } = lines;
    if (bad.length > 0) {
      const listed = bad.slice(0, LISTED_LINES).join(', ') + (bad.length > LISTED_LINES ? ', …' : '');
      log.warn(
        `skipped ${bad.length} line(s) of ${file} that are not valid error reports (line ${listed}${tornTail ? `; line ${bad.at(-1)} was torn by an interrupted write` : ''}); they are not sent and go at the next rewrite`,
        { code: ErrorCode.REPORT_BUFFER_DAMAGED, lines: bad.slice(0, LISTED_LINES) },
      );
    }
    this.#entries = entries;
    this.#undelivered.clear();
    for (const entry of entries) this.#undelivered.add(entry);
    this.#bytes = entries.reduce((sum, entry) => sum + entry.bytes, 0);
    this.#damaged = bad.length > 0;
    this.#loaded = true;
  }
}

/** Truncates the file to nothing and fsyncs it: its name and inode stay, no temp file, no folder sync. */
function emptyInPlace(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r+');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  try {
    fs.ftruncateSync(fd, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function parseEntry(json: string): Entry | null {
  const line = `${json}\n`;
  const bytes = Buffer.byteLength(line);
  if (bytes > REPORT_MAX_BYTES) return null;
  const report = jsonLineOf(ErrorReport)(json);
  return report === null ? null : { report, line, bytes };
}

/** `error_reports.dropped`. */
const DropCount = z.object({ unreported: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER) });

function readDrops(file: string, log: Logger): number {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') log.error(`cannot read ${file}: ${errnoCode(error) ?? describeError(error)}`, { code: ErrorCode.REPORT_BUFFER_IO });
    return 0;
  }
  const parsed = DropCount.safeParse(tryParseJson(text));
  if (parsed.success) return parsed.data.unreported;
  log.warn(`ignored the damaged dropped-report count in ${file}`, { code: ErrorCode.REPORT_BUFFER_DAMAGED });
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
function clip(raw: string): string {
  // Texts that leave the machine carry no credential (a backend URL with user:password in a message).
  const text = redactSecrets(raw);
  return text.length > MAX_TEXT_CHARS ? `${text.slice(0, MAX_TEXT_CHARS - 1)}…` : text;
}
