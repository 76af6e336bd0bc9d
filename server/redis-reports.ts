import { type CommandParser, defineScript } from '@redis/client';
import { describeError } from '../app/base/errors.js';
import { ErrorReport } from '../app/common/reports.js';
import type { RedisCommands, RedisLink } from './redis-link.js';
import { REDIS_TIMEOUT_MS } from './redis-outages.js';
import { type ReportStore, ReportStoreUnavailable, type StoredReport } from './report-store.js';

/**
 * The Redis layout of the shared report store. One stream holds the reports, oldest first, each entry
 * `report` = the report's JSON; its id is Redis's clock when the report was stored, so "received in
 * the last hour" is an XRANGE. Beside it, one key per report id, holding the entry id, for
 * de-duplication across nodes.
 */
export const REPORTS_STREAM = 'outpost:reports';
export const REPORT_ID_KEY_PREFIX = 'outpost:report-id:';
export const REPORT_FIELD = 'report';
/**
 * How long a report id is remembered. A duplicate comes from an agent that did not hear the answer
 * (a cut connection, a crash before it noted the delivery): it sends the report again at its next
 * flush, at the latest at its next start, and keeps it until then whatever its age. 30 days covers a
 * machine switched off for a month; a copy sent later still is stored twice, never lost.
 */
export const REPORT_ID_TTL_S = 30 * 24 * 60 * 60;

/** What a 503 tells the agent: the client reconnects by itself meanwhile. */
const RETRY_AFTER_S = 30;

/**
 * Stores a report once per id, atomically (a script runs whole, and is written to the AOF as one
 * transaction): XADD first, then the id key, so a script stopped by an error half way (the only way
 * one is not whole: Redis does not roll back) leaves at most a report without its id key, which a
 * re-send duplicates, never an id key without its report, which would answer a re-send "duplicate"
 * for a report that is nowhere. MAXLEN ~ bounds the stream (trimming whole radix-tree nodes, cheap);
 * XLEN before and after tell how many entries the trim dropped.
 * Reply: [1 if duplicate, the entry id, the stream's length, entries trimmed].
 */
const ADD_REPORT = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `
local seen = redis.call('GET', KEYS[2])
if seen then return {1, seen, redis.call('XLEN', KEYS[1]), 0} end
local before = redis.call('XLEN', KEYS[1])
local entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', '${REPORT_FIELD}', ARGV[3])
redis.call('SET', KEYS[2], entry, 'EX', ARGV[1])
local after = redis.call('XLEN', KEYS[1])
return {0, entry, after, before + 1 - after}`,
  parseCommand(parser: CommandParser, stream: string, idKey: string, ttlS: number, maxLen: number, report: string) {
    parser.pushKey(stream);
    parser.pushKey(idKey);
    parser.push(String(ttlS), String(maxLen), report);
  },
  transformReply: (reply: unknown): AddReply => {
    if (!Array.isArray(reply) || reply.length !== 4) throw new Error(`unexpected answer from the report script: ${JSON.stringify(reply)}`);
    const [duplicate, entry, length, trimmed] = reply as unknown[];
    return { duplicate: duplicate === 1, entry: String(entry), length: Number(length), trimmed: Number(trimmed) };
  },
});

interface AddReply {
  readonly duplicate: boolean;
  readonly entry: string;
  readonly length: number;
  readonly trimmed: number;
}

/** The store's scripts, for the node's commands client (redis-link.ts). */
export const REPORT_SCRIPTS = { addReport: ADD_REPORT };

export interface RedisReportStoreOptions {
  /** The node's connections to Redis. */
  readonly link: RedisLink;
  readonly log: (line: string) => void;
  /** Entries the stream keeps, about (MAXLEN ~): past it the oldest are trimmed. */
  readonly maxReports: number;
}

/**
 * The report store shared by every node behind a balancer: one Redis stream (REPORTS_STREAM), each
 * report once whichever node took it and however often its agent sent it (ADD_REPORT). A node
 * answers an agent only after Redis did: stored, or a duplicate of a stored one. Durable as far as
 * Redis is: it must run with appendonly yes (docs/server.md).
 *
 * The node does not wait for Redis to start, nor stops when it goes: meanwhile reports are answered
 * 503 at once (the commands client has no offline queue; the agent keeps them and sends them again),
 * and the node says so once per outage.
 */
export class RedisReportStore implements ReportStore {
  readonly #options: RedisReportStoreOptions;
  /** The stream's length as last seen (Redis has the truth; /health shows this). */
  #length = 0;
  #dropped = 0;
  /** Connected once at least: the first connection is worth a line, later ones only after an outage. */
  #connected = false;

  private constructor(options: RedisReportStoreOptions) {
    this.#options = options;
  }

  /** Resolves at once, connected or not: Redis may come later. Async so that a bad option rejects, as FileReportStore.open does. */
  static async open(options: RedisReportStoreOptions): Promise<RedisReportStore> {
    if (!Number.isInteger(options.maxReports) || options.maxReports < 1) throw new RangeError(`maxReports must be a positive integer, got ${options.maxReports}`);
    const store = new RedisReportStore(options);
    options.link.outages.waits('reports are answered 503 (agents keep them)');
    options.link.onReady(() => void store.#readLength());
    return store;
  }

  /** The stream's length when this node last stored a report (or connected): reports of every node. */
  get stored(): number {
    return this.#length;
  }

  /** Entries this node's appends trimmed off the stream since start (other nodes count their own). */
  get dropped(): number {
    return this.#dropped;
  }

  async add(report: ErrorReport): Promise<'stored' | 'duplicate'> {
    const { link } = this.#options;
    let reply: AddReply;
    try {
      reply = await this.#withTimeout(link.commands.addReport(REPORTS_STREAM, `${REPORT_ID_KEY_PREFIX}${report.id}`, REPORT_ID_TTL_S, this.#options.maxReports, JSON.stringify(report)));
    } catch (error) {
      const why = describeError(error);
      link.outages.commandFailed(why);
      throw new ReportStoreUnavailable(`the report store (Redis at ${link.where}) is unavailable (${why})`, RETRY_AFTER_S, { cause: error });
    }
    link.outages.commandAnswered();
    this.#length = reply.length;
    this.#dropped += reply.trimmed;
    if (!reply.duplicate) this.#options.log(`reports: stored ${report.id} as ${reply.entry} (${report.code} from agent ${report.agent_id} ${report.agent_version})`);
    return reply.duplicate ? 'duplicate' : 'stored';
  }

  /** The link is the node's to close. */
  async close(): Promise<void> {}

  /** At every (re)connection: the stream's length, so /health is right before the first report. */
  async #readLength(): Promise<void> {
    const { link } = this.#options;
    try {
      this.#length = await link.commands.xLen(REPORTS_STREAM);
      if (!this.#connected) this.#options.log(`reports: storing reports in the Redis stream ${REPORTS_STREAM} at ${link.where}, which holds ${this.#length} report(s)`);
      this.#connected = true;
      link.outages.commandAnswered();
    } catch (error) {
      link.outages.commandFailed(describeError(error));
    }
  }

  /** Rejects when Redis has not answered in REDIS_TIMEOUT_MS (hung, or a network gone silent). */
  async #withTimeout<T>(pending: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${REDIS_TIMEOUT_MS} ms`)), REDIS_TIMEOUT_MS);
    });
    try {
      // A script that completes after the timeout stored the report: the agent's re-send is then a duplicate.
      return await Promise.race([pending, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

}

const PAGE = 1_000;

/**
 * The reports the stream received from `since` on, oldest first, read a page at a time. Entries that
 * are not a report (written by something else) are skipped.
 */
export async function* readReportsStream(client: RedisCommands, since: Date): AsyncGenerator<StoredReport> {
  let start = String(since.getTime());
  for (;;) {
    const entries = (await client.xRange(REPORTS_STREAM, start, '+', { COUNT: PAGE })) ?? [];
    for (const entry of entries) {
      const stored = storedReport(entry.id, entry.message[REPORT_FIELD]);
      if (stored) yield stored;
    }
    const last = entries.at(-1);
    if (entries.length < PAGE || last === undefined) return;
    start = `(${last.id}`;
  }
}

function storedReport(entryId: string, json: unknown): StoredReport | undefined {
  if (typeof json !== 'string') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  const report = ErrorReport.safeParse(value);
  const receivedAt = new Date(Number(entryId.split('-')[0]));
  return report.success && !Number.isNaN(receivedAt.getTime()) ? { receivedAt, report: report.data } : undefined;
}
