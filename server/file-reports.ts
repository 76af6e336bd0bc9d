import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fsyncDirectory } from '../app/base/durable-file.js';
import { describeError } from '../app/base/errors.js';
import { streamJsonLines } from '../app/base/jsonl.js';
import { ErrorReport } from '../app/common/reports.js';
import type { ReportStore, StoredReport } from './report-store.js';
import { REPORT_BODY_MAX_BYTES } from './reports-intake.js';

export const DEFAULT_MAX_REPORTS_BYTES = 64 * 1024 * 1024;
/** The smallest byte bound: a quarter of it (what a trim frees, see #makeRoom) holds any stored line. */
export const MIN_REPORTS_MAX_BYTES = 1024 * 1024;

/** A stored line is a report (re-serialized, never longer than its body) in a small envelope. */
const STORED_LINE_MAX_BYTES = REPORT_BODY_MAX_BYTES + 1024;
/** A trim keeps the newest three quarters of each bound, so a full store is rewritten once per quarter, not per report. */
const KEEP_AFTER_TRIM = 3 / 4;

export interface FileReportStoreOptions {
  /** The JSON Lines file: one `{"received_at":..., "report":{...}}` per line, oldest first. */
  readonly file: string;
  readonly log: (line: string) => void;
  readonly now: () => Date;
  /** The store's bounds (reports, and bytes of the file): past either, the oldest reports are dropped. */
  readonly maxReports: number;
  readonly maxBytes: number;
}

/** A report in the file: its id, and the byte offset its line starts at. */
interface FileEntry {
  readonly id: string;
  start: number;
}

/**
 * The single-node report store: reports appended to a JSON Lines file, once per report id. The ids in
 * the file are loaded at start, so de-duplication survives a restart. The file keeps at most
 * maxReports reports and maxBytes bytes: beyond them the oldest are dropped (in batches, see
 * #makeRoom), counted in `dropped`. A dropped report's id is forgotten with it: its agent deleted its
 * copy when the report was acknowledged, so it does not come back.
 */
export class FileReportStore implements ReportStore {
  readonly #options: FileReportStoreOptions;
  /** Replaced by a trim (the file is then a new one); appended to otherwise. */
  #file: fs.promises.FileHandle;
  readonly #ids: Set<string>;
  /** Oldest first, as in the file. */
  #reports: FileEntry[];
  /** Bytes in the file (unreadable lines included). */
  #size: number;
  #dropped = 0;
  /** Stores happen one at a time: lines never interleave, and a duplicate is decided after the first copy is on disk. */
  #queue: Promise<unknown> = Promise.resolve();
  /** The file ended in a torn line (a crash mid-write): the next line must start on a fresh line. */
  #needsNewline: boolean;

  private constructor(options: FileReportStoreOptions, file: fs.promises.FileHandle, loaded: LoadedStore) {
    this.#options = options;
    this.#file = file;
    this.#ids = new Set(loaded.reports.map((report) => report.id));
    this.#reports = loaded.reports;
    this.#size = loaded.size;
    this.#needsNewline = !loaded.endsWithNewline;
  }

  static async open(options: FileReportStoreOptions): Promise<FileReportStore> {
    if (!Number.isInteger(options.maxReports) || options.maxReports < 1) throw new RangeError(`maxReports must be a positive integer, got ${options.maxReports}`);
    if (!Number.isInteger(options.maxBytes) || options.maxBytes < MIN_REPORTS_MAX_BYTES) throw new RangeError(`maxBytes must be an integer of at least ${MIN_REPORTS_MAX_BYTES}, got ${options.maxBytes}`);
    await fs.promises.mkdir(path.dirname(options.file), { recursive: true });
    // Reports name agents and their errors: readable by the server's user only.
    const file = await fs.promises.open(options.file, 'a+', 0o600);
    let store: FileReportStore | undefined;
    try {
      const loaded = await loadStore(options.file, file);
      if (loaded.skipped > 0) options.log(`reports: skipped ${loaded.skipped} unreadable line(s) in ${options.file} (a torn last line is left by a crash mid-write)`);
      options.log(`reports: ${loaded.reports.length} report(s) already stored in ${options.file}`);
      store = new FileReportStore(options, file, loaded);
      // A file already past the bounds (they were lowered, or it predates them) is trimmed now.
      await store.#makeRoom(0);
      return store;
    } catch (error) {
      await (store ? store.#file : file).close();
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

  /** Waits for pending writes, then closes the file. */
  async close(): Promise<void> {
    await this.#queue.catch(() => undefined);
    await this.#file.close();
  }

  add(report: ErrorReport): Promise<'stored' | 'duplicate'> {
    const stored = this.#queue.catch(() => undefined).then(() => this.#store(report));
    this.#queue = stored;
    return stored;
  }

  /** Appends the report unless its id is stored already. */
  async #store(report: ErrorReport): Promise<'stored' | 'duplicate'> {
    if (this.#ids.has(report.id)) return 'duplicate';
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
      throw new Error(`cannot append to the reports file ${this.#options.file}: ${describeError(error)}`, { cause: error });
    }
    this.#needsNewline = false;
    this.#size += Buffer.byteLength(line);
    this.#ids.add(report.id);
    this.#reports.push({ id: report.id, start });
    this.#options.log(`reports: stored ${report.id} (${report.code} from agent ${report.agent_id} ${report.agent_version})`);
    return 'stored';
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
      throw new Error(`cannot trim the reports file ${file} to its bounds: ${describeError(error)}`, { cause: error });
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
  readonly reports: FileEntry[];
  readonly skipped: number;
  readonly size: number;
  readonly endsWithNewline: boolean;
}

/** The reports in the file, oldest first, each id once; lines that are not a stored report (a torn last line) are counted and skipped. */
async function loadStore(name: string, file: fs.promises.FileHandle): Promise<LoadedStore> {
  const reports: FileEntry[] = [];
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

/**
 * The reports in a store's file, oldest first, for reading while a server may be appending to it (the
 * `failures` command): lines that are not a stored report (a torn last line) are skipped. A missing
 * file rejects with ENOENT at the first read.
 */
export async function* readReportsFile(file: string): AsyncGenerator<StoredReport> {
  for await (const line of streamJsonLines(file, STORED_LINE_MAX_BYTES)) {
    const stored = storedReport(line.value);
    if (stored) yield stored;
  }
}

function storedReport(value: unknown): StoredReport | undefined {
  if (typeof value !== 'object' || value === null || !('received_at' in value) || !('report' in value)) return undefined;
  const receivedAt = typeof value.received_at === 'string' ? new Date(value.received_at) : undefined;
  const report = ErrorReport.safeParse(value.report);
  return receivedAt && !Number.isNaN(receivedAt.getTime()) && report.success ? { receivedAt, report: report.data } : undefined;
}
