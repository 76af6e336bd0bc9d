import * as z from 'zod';
import { AGENT_STATES } from './agent-state.js';
import { LOG_LEVELS } from './log-levels.js';
import { DownloadCost } from './update-files.js';

/**
 * The diagnostics page's contract: what the page asks (`DiagnosticsApi`), what it is shown
 * (`DiagnosticsView`), and how a call travels. The same renderer code runs over two carriers:
 * Electron's preload bridge (app/preload) and, for headless agents, a WebSocket from
 * `outpost diagnostics`. Both carry `ApiCall` and `ApiResult` and validate them with these schemas.
 */

/** Where the page has read the log up to: the next read returns only newer lines. */
export const LogCursor = z
  .object({
    /** Identifies the file (it changes when the log rotates, and the tail then starts over). */
    file: z.string().max(200),
    offset: z.number().int().nonnegative(),
  })
  .strict();
export type LogCursor = z.infer<typeof LogCursor>;

export const LogLine = z.object({ at: z.string(), level: z.enum(LOG_LEVELS), text: z.string() }).strict();
export type LogLine = z.infer<typeof LogLine>;

/** How many lines the first read shows; later reads return what was written since. */
export const LOG_TAIL_LINES = 300;

const iso = z.string();
const problem = z.object({ code: z.string(), message: z.string() }).strict();

export const UpdatePhase = z
  .object({
    step: z.string(),
    /** ok: ended; failed: said so; running: begun and not ended (the job is under way, or was cut short). */
    result: z.enum(['ok', 'failed', 'running']),
    began_at: iso,
    ms: z.number().nonnegative().nullable(),
    detail: z.string().nullable(),
  })
  .strict();
export type UpdatePhase = z.infer<typeof UpdatePhase>;

export const DiagnosticsView = z
  .object({
    /** When the agent built this view. */
    at: iso,
    agent: z
      .object({
        state: z.enum(AGENT_STATES),
        state_since: iso,
        version: z.string(),
        pid: z.number().int(),
        uptime_s: z.number().nonnegative(),
        storage: z.string(),
        logs: z.string(),
        /** electron: the desktop app (it can open folders); headless: the `outpost` command. */
        shell: z.enum(['electron', 'headless']),
      })
      .strict(),
    /** The single-instance lock as its file says (null: unreadable). */
    lock: z.object({ pid: z.number().int(), version: z.string(), acquired_at: iso, heartbeat_at: iso }).strict().nullable(),
    update: z
      .object({
        /** False when this agent takes no updates (no trusted root, no installation folder). */
        enabled: z.boolean(),
        channel: z.string(),
        last_check: iso.nullable(),
        /** What the last check found, in a sentence ("up to date", "0.2.0 offered", the error). */
        last_result: z.object({ ok: z.boolean(), message: z.string() }).strict().nullable(),
        offered: z.string().nullable(),
        staged: z.string().nullable(),
        last_error: problem.nullable(),
        /** What the last download cost against the release's size. */
        last_download: DownloadCost.nullable(),
        progress: z
          .object({
            bytes: z.number().nonnegative(),
            total: z.number().nonnegative(),
            percent: z.number().min(0).max(100),
            /** Bytes per second over the last few seconds (null: too early to say). */
            bytes_per_s: z.number().nonnegative().nullable(),
          })
          .strict()
          .nullable(),
        /** Versions the circuit breaker holds back after rollbacks. */
        held_back: z.array(z.object({ version: z.string(), rollbacks: z.number().int(), last: iso }).strict()),
        last_job: z
          .object({
            job_id: z.string(),
            from: z.string(),
            to: z.string(),
            /** null while the job has no outcome (under way, or cut short and waiting for recovery). */
            outcome: z.string().nullable(),
            reason: z.string().nullable(),
            phases: z.array(UpdatePhase),
          })
          .strict()
          .nullable(),
      })
      .strict(),
    reports: z.object({ queued: z.number().int().nonnegative() }).strict(),
    log: z.object({ cursor: LogCursor, lines: z.array(LogLine), truncated: z.boolean() }).strict(),
  })
  .strict();
export type DiagnosticsView = z.infer<typeof DiagnosticsView>;

export const ActionResult = z.object({ ok: z.boolean(), message: z.string() }).strict();
export type ActionResult = z.infer<typeof ActionResult>;

/** A support ticket's attachment: state, config with secrets removed, recent log, last journal. */
export const DiagnosticsBundle = z.object({ file_name: z.string(), text: z.string() }).strict();
export type DiagnosticsBundle = z.infer<typeof DiagnosticsBundle>;

export const ReadParams = z.object({ log_after: LogCursor.nullable() }).strict();
export type ReadParams = z.infer<typeof ReadParams>;

/** What the page can ask, whatever carries it. */
export interface DiagnosticsApi {
  read(params: ReadParams): Promise<DiagnosticsView>;
  checkNow(): Promise<ActionResult>;
  openLogFolder(): Promise<ActionResult>;
  bundle(): Promise<DiagnosticsBundle>;
}

/** One call on either carrier. */
export const ApiCall = z.discriminatedUnion('method', [
  z.object({ id: z.number().int().nonnegative(), method: z.literal('read'), params: ReadParams }).strict(),
  z.object({ id: z.number().int().nonnegative(), method: z.literal('check_now') }).strict(),
  z.object({ id: z.number().int().nonnegative(), method: z.literal('open_log_folder') }).strict(),
  z.object({ id: z.number().int().nonnegative(), method: z.literal('bundle') }).strict(),
]);
export type ApiCall = z.infer<typeof ApiCall>;
export type ApiMethod = ApiCall['method'];

export const ApiResult = z.union([
  z.object({ id: z.number().int().nonnegative(), ok: z.literal(true), result: z.unknown() }).strict(),
  z.object({ id: z.number().int().nonnegative(), ok: z.literal(false), error: problem }).strict(),
]);
export type ApiResult = z.infer<typeof ApiResult>;

/** What each method returns, checked by the page's side of either carrier. */
export const API_RESULTS = {
  read: DiagnosticsView,
  check_now: ActionResult,
  open_log_folder: ActionResult,
  bundle: DiagnosticsBundle,
} as const satisfies Record<ApiMethod, z.ZodType>;

/** Largest call either carrier accepts from the page (a read with its cursor is well under 1 KiB). */
export const API_MAX_CALL_BYTES = 4 * 1024;

/** Electron's channel for ApiCall (ipcRenderer.invoke), and the name the preload gives the API. */
export const DIAGNOSTICS_CHANNEL = 'outpost:diagnostics';
export const DIAGNOSTICS_GLOBAL = 'outpostDiagnostics';

/**
 * The page's files, as the build writes them into dist/app/renderer/, with their content types:
 * both carriers serve these and nothing else (`diagnostics.js` is bundled; the others are copied).
 */
export const PAGE_FILES = {
  'index.html': 'text/html; charset=utf-8',
  'diagnostics.js': 'text/javascript; charset=utf-8',
  'styles.css': 'text/css; charset=utf-8',
} as const;
export type PageFileName = keyof typeof PAGE_FILES;

/** The WebSocket path of `outpost diagnostics`. */
export const DIAGNOSTICS_WS_PATH = '/api';

/**
 * The page's Content-Security-Policy, sent by both carriers: its own scripts and styles only (no
 * inline script or style, no remote origin, no eval), no frames, no forms, no plugins.
 * `connect-src 'self'` lets the headless page open its WebSocket to the origin that served it.
 */
export const DIAGNOSTICS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The headers both carriers send with the page's files: its CSP, no sniffing, no referrer, no cache. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': DIAGNOSTICS_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};
