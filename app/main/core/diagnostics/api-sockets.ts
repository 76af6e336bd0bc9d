import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { ErrorCode, errnoCode } from '../../../base/errors.js';
import { LivePeers, refuseUpgrade } from '../../../base/websocket-peers.js';
import { tryParseJson } from '../../../base/jsonl.js';
import type { Logger } from '../../../base/logger.js';
import { API_MAX_CALL_BYTES, type ApiResult, type DiagnosticsApi } from '../../../common/diagnostics.js';
import { dispatchApiCall } from './api-dispatch.js';
import type { RefusalLog } from './refusal-log.js';

/** Open pages at once (a few tabs); an upgrade past it is refused with 503. */
export const MAX_API_SOCKETS = 8;
/** Calls one page may have unanswered; a call past it is answered at once with an error, not queued. */
export const MAX_CALLS_IN_FLIGHT = 4;

export interface ApiSocketsOptions {
  readonly api: DiagnosticsApi;
  readonly log: Logger;
  readonly refusals: RefusalLog;
  /** How often each page is pinged; one that has not answered the previous ping by then is dropped. */
  readonly heartbeatMs: number;
}

/**
 * The page's side of the WebSocket carrier: every text message is an ApiCall, dispatched like the
 * Electron carrier's, and answered with its ApiResult as JSON. The caller has already checked who is
 * connecting (Host, Origin, session); this bounds what a connection may cost: ws closes one whose
 * message passes API_MAX_CALL_BYTES with 1009, binary messages close it with 1003, and pages that
 * stopped answering pings (a suspended laptop, a killed browser) are terminated.
 */
export class ApiSockets {
  readonly #options: ApiSocketsOptions;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: API_MAX_CALL_BYTES, perMessageDeflate: false, clientTracking: false });
  readonly #sockets: LivePeers<WebSocket>;

  constructor(options: ApiSocketsOptions) {
    this.#options = options;
    this.#sockets = new LivePeers(options.heartbeatMs, (dropped) => {
      for (const _ of dropped) options.log.info('dropped a diagnostics page that stopped answering pings');
    });
  }

  /** Turns an upgrade request that passed the caller's checks into an API connection, unless MAX_API_SOCKETS are open. */
  accept(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#sockets.size >= MAX_API_SOCKETS) {
      this.#options.refusals.refused('too-many-sockets', `${MAX_API_SOCKETS} pages are connected already`);
      refuseDiagnosticsUpgrade(socket, 503, `at most ${MAX_API_SOCKETS} diagnostics pages may be open at once; close one`);
      return;
    }
    // Without verifyClient ws completes the upgrade synchronously, so no handshake can overtake the count above.
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#serve(ws));
  }

  /** Terminates every connection (a closing server does not wait on close handshakes) and stops the heartbeat. */
  close(): void {
    this.#sockets.close();
    this.#wss.close();
  }

  #serve(ws: WebSocket): void {
    const { api, refusals } = this.#options;
    let inFlight = 0;
    this.#sockets.add(ws);
    // ws reports a protocol violation here, then closes the connection itself with the matching code.
    ws.on('error', (error) => {
      if (isOversized(error)) refusals.refused('oversized-message', `a message passed ${API_MAX_CALL_BYTES} bytes: connection closed (1009)`);
      else this.#options.log.warn(`page connection closed on a protocol error: ${error.message}`);
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        refusals.refused('binary-message', 'the page sent a binary message: connection closed (1003)');
        ws.close(1003, 'text messages only');
        return;
      }
      const message = textOf(data);
      if (inFlight >= MAX_CALLS_IN_FLIGHT) {
        refusals.refused('too-many-calls', `a call came while ${MAX_CALLS_IN_FLIGHT} were unanswered`);
        send(ws, tooManyCalls(message));
        return;
      }
      inFlight++;
      void dispatchApiCall(message, api).then((result) => {
        inFlight--;
        send(ws, result);
      });
    });
  }
}

/** A refused upgrade, its reason a line of text as the page server's other refusals are. */
export function refuseDiagnosticsUpgrade(socket: Duplex, status: 403 | 404 | 421 | 503, reason: string): void {
  refuseUpgrade(socket, status, `${reason}\n`);
}

/** A page that answers late may have gone meanwhile. */
function send(ws: WebSocket, result: ApiResult): void {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(result));
}

function tooManyCalls(message: string): ApiResult {
  const id = z.object({ id: z.number().int().nonnegative() }).safeParse(tryParseJson(message));
  return {
    id: id.success ? id.data.id : 0,
    ok: false,
    error: { code: ErrorCode.DIAGNOSTICS_BAD_CALL, message: `at most ${MAX_CALLS_IN_FLIGHT} calls may wait for an answer at once: wait for one before sending another` },
  };
}

/** ws's type covers every binaryType; with the default one, never changed here, this is the first branch. */
function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString('utf8');
}

function isOversized(error: Error): boolean {
  return errnoCode(error) === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
}
