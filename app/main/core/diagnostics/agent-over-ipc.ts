import { ErrorCode, isOutpostError, OutpostError } from '../../../base/errors.js';
import type { ActionResult, DiagnosticsApi, DiagnosticsBundle, DiagnosticsView, ReadParams } from '../../../common/diagnostics.js';
import type { IpcCommand, Reply } from '../../../common/ipc.js';
import { unexpectedReply } from '../agent-client.js';

/** What this needs of an IPC client (core/agent-client.ts's AgentClient). */
export interface CommandSender {
  send(command: IpcCommand, timeoutMs: number, args?: unknown): Promise<Reply>;
}

/** A diagnostics read answers from memory and a few small files: anything slower is an agent in trouble. */
const READ_TIMEOUT_MS = 5_000;
/** A bundle reads up to half a megabyte of log. */
const BUNDLE_TIMEOUT_MS = 10_000;

/**
 * The diagnostics API of a running agent, reached through its authenticated IPC: what
 * `outpost diagnostics` serves the page from, so that the agent opens no listener of its own for it.
 * An agent that is not running (or not answering) is ERR_DIAGNOSTICS_NO_AGENT, which the page shows
 * as such and keeps asking.
 */
export class AgentOverIpc implements DiagnosticsApi {
  readonly #client: CommandSender;
  /** The last view's log folder, for the sentence that stands in for "open the log folder". */
  #logs: string | null = null;

  constructor(client: CommandSender) {
    this.#client = client;
  }

  async read(params: ReadParams): Promise<DiagnosticsView> {
    const reply = await this.#send('diagnostics', READ_TIMEOUT_MS, params);
    if (!reply.view) throw unexpectedReply('diagnostics', reply);
    this.#logs = reply.view.agent.logs;
    return reply.view;
  }

  async checkNow(): Promise<ActionResult> {
    const reply = await this.#send('check_for_update', READ_TIMEOUT_MS);
    return { ok: reply.status === 'ok', message: reply.message ?? reply.status };
  }

  async openLogFolder(): Promise<ActionResult> {
    return { ok: false, message: `a headless agent opens no folders${this.#logs ? `; its logs are in ${this.#logs}` : ''}` };
  }

  async bundle(): Promise<DiagnosticsBundle> {
    const reply = await this.#send('diagnostics_bundle', BUNDLE_TIMEOUT_MS);
    if (!reply.bundle) throw unexpectedReply('diagnostics_bundle', reply);
    return reply.bundle;
  }

  async #send(command: IpcCommand, timeoutMs: number, args?: unknown): Promise<Reply> {
    let reply: Reply;
    try {
      reply = await this.#client.send(command, timeoutMs, args);
    } catch (error) {
      if (isOutpostError(error, ErrorCode.IPC_NOT_RUNNING) || isOutpostError(error, ErrorCode.IPC_TIMEOUT)) {
        throw new OutpostError(ErrorCode.DIAGNOSTICS_NO_AGENT, `The agent is not ${isOutpostError(error, ErrorCode.IPC_TIMEOUT) ? 'answering' : 'running'}: ${error.message}`, { cause: error });
      }
      throw error;
    }
    if (reply.status === 'bad_request') throw unexpectedReply(command, reply);
    return reply;
  }
}
