import * as z from 'zod';
import { DiagnosticsBundle, DiagnosticsView, ReadParams } from './diagnostics.js';
import { DownloadCost } from './update-files.js';

/**
 * The local IPC contract between a running agent and a second launch (`outpost --force`,
 * `outpost status`, `outpost diagnostics`, a second launch of the desktop app). Newline-delimited JSON, one message per line,
 * every message validated at the edge with these schemas by both ends.
 *
 * The handshake is a mutual challenge-response over HMAC-SHA256 with fresh nonces from both sides:
 *   client -> hello     { nonce: Nc }
 *   server -> challenge { nonce: Ns, proof: HMAC(secret, "server" | Nc | Ns) }
 *   client checks the server's proof before it sends anything derived from the secret (a process
 *   squatting on the endpoint learns nothing), then
 *   client -> request   { command, proof: HMAC(secret, "client" | Ns | Nc | command) }
 *   server -> reply     { status, ... }
 * Neither side ever sends the secret; a recorded exchange cannot be replayed (Ns is fresh), and the
 * command is bound into the client's proof.
 */

export const IPC_PROTOCOL_VERSION = 1;
/** Longest line the agent accepts, newline included. */
export const IPC_MAX_MESSAGE_BYTES = 16 * 1024;
/**
 * Longest reply a client accepts: a diagnostics view carries a log tail (at most
 * DIAGNOSTICS_LOG_BYTES) and a bundle the recent log; every other reply is under 2 KiB.
 */
export const IPC_MAX_REPLY_BYTES = 2 * 1024 * 1024;
/** The most log text one diagnostics reply carries (the agent cuts the tail to fit). */
export const DIAGNOSTICS_LOG_BYTES = 256 * 1024;
/** A connection that sends nothing for this long is closed. */
export const IPC_IDLE_TIMEOUT_MS = 2_000;
/** A connection is closed after this long, whatever it does. */
export const IPC_TOTAL_TIMEOUT_MS = 5_000;
/** Connections beyond this are closed at once. */
export const IPC_MAX_CONNECTIONS = 16;

export const IPC_COMMANDS = ['force_restart', 'status', 'show_diagnostics', 'check_for_update', 'diagnostics', 'diagnostics_bundle', 'quit'] as const;
export type IpcCommand = (typeof IPC_COMMANDS)[number];

export const REPLY_STATUSES = ['ok', 'busy_updating', 'invalid_secret', 'bad_request', 'not_available'] as const;
export type ReplyStatus = (typeof REPLY_STATUSES)[number];

const nonce = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be 32 bytes, base64url');
const mac = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be an HMAC-SHA256, base64url');
const version = z.literal(IPC_PROTOCOL_VERSION);

export const Hello = z.object({ v: version, type: z.literal('hello'), nonce, client_pid: z.number().int().positive() }).strict();
export type Hello = z.infer<typeof Hello>;

export const Challenge = z.object({ v: version, type: z.literal('challenge'), nonce, proof: mac }).strict();
export type Challenge = z.infer<typeof Challenge>;

/**
 * `args`: the command's parameters as JSON text (only `diagnostics` takes any: ReadParams), bound
 * into the proof with the command. Absent for every other command, so that clients and agents of
 * versions before it still agree on the proof.
 */
export const Request = z
  .object({ v: version, type: z.literal('request'), command: z.enum(IPC_COMMANDS), args: z.string().max(4096).optional(), proof: mac })
  .strict();
export type Request = z.infer<typeof Request>;

/** The parameters each command takes (the others take none). */
export const COMMAND_ARGS = { diagnostics: ReadParams } as const satisfies Partial<Record<IpcCommand, z.ZodType>>;

export const UpdateStatus = z
  .object({
    /** The version the feed offers this agent now, if any. */
    offered: z.string().nullable(),
    /** A version staged complete and verified in updates/, waiting for the hand-off. */
    staged: z.string().nullable(),
    last_error: z.object({ code: z.string(), message: z.string() }).strict().nullable(),
    /** What the last download cost, against the release's size (null: none yet on this machine). */
    last_download: DownloadCost.nullable(),
  })
  .strict();
export type UpdateStatus = z.infer<typeof UpdateStatus>;

/** What `status` returns (CONTRACT.md). */
export const StatusData = z
  .object({
    state: z.string(),
    version: z.string(),
    pid: z.number().int(),
    storage: z.string(),
    uptime_s: z.number(),
    /** ISO 8601, when the agent last asked the feed (null: not yet). */
    last_update_check: z.string().nullable(),
    update: UpdateStatus,
  })
  .strict();
export type StatusData = z.infer<typeof StatusData>;

export const Reply = z
  .object({
    v: version,
    type: z.literal('reply'),
    status: z.enum(REPLY_STATUSES),
    message: z.string().max(1_000).optional(),
    data: StatusData.optional(),
    /** `diagnostics`: what the diagnostics page shows. */
    view: DiagnosticsView.optional(),
    /** `diagnostics_bundle`: the support bundle. */
    bundle: DiagnosticsBundle.optional(),
  })
  .strict();
export type Reply = z.infer<typeof Reply>;
