import { ErrorCode, OutpostError } from '../../base/errors.js';
import type { IpcCommand, Reply } from '../../common/ipc.js';
import type { Platform } from '../platform/index.js';
import { sendCommand } from './ipc-client.js';
import { readIpcSecret } from './ipc-secret.js';
import { locateStorage } from './storage.js';

export interface AgentAddress {
  /** The storage folder of the agent being addressed. */
  readonly storageRoot: string;
  readonly endpoint: string;
}

/**
 * What a second launch (`outpost status`, `outpost --force`, later the Electron shell's second
 * instance) uses to talk to the running agent of the same storage folder. Read-only: it creates
 * nothing, not even the storage folder.
 */
export class AgentClient {
  readonly address: AgentAddress;
  readonly #platform: Platform;
  readonly #elevated: boolean;
  readonly #scope: string;

  constructor(platform: Platform, env: NodeJS.ProcessEnv) {
    this.#platform = platform;
    this.#elevated = platform.isElevated();
    const { root } = locateStorage(platform, env, this.#elevated);
    const endpoint = platform.ipcEndpoint(root);
    this.#scope = endpoint.scope;
    this.address = { storageRoot: root, endpoint: endpoint.path };
  }

  /**
   * Sends one command. Throws OutpostError: ERR_IPC_NOT_RUNNING, ERR_IPC_AUTH, ERR_IPC_TIMEOUT,
   * ERR_IPC_PROTOCOL, ERR_IPC_SECRET (see sendCommand).
   */
  send(command: IpcCommand, timeoutMs: number, args?: unknown): Promise<Reply> {
    return sendCommand({
      endpoint: this.address.endpoint,
      command,
      ...(args !== undefined && { args }),
      timeoutMs,
      // A flood of connections makes the agent drop the oldest, maybe this one: try again in time.
      retryDropped: true,
      secret: () =>
        readIpcSecret({
          storageRoot: this.address.storageRoot,
          scope: this.#scope,
          elevated: this.#elevated,
          credentials: this.#platform.credentialStore(),
        }).value,
    });
  }
}

/** A reply that is not what the command asked for (an agent of another version, or a bug). */
export function unexpectedReply(command: IpcCommand, reply: Reply): OutpostError {
  return new OutpostError(ErrorCode.IPC_PROTOCOL, `The agent answered "${command}" with ${reply.status}${reply.message ? `: ${reply.message}` : ''}.`);
}
