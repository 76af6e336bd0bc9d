import net from 'node:net';
import { Challenge, IPC_MAX_MESSAGE_BYTES, IPC_PROTOCOL_VERSION, type IpcCommand, Reply } from '../../common/ipc.js';
import { errnoCode, ErrorCode, OutpostError } from '../../base/errors.js';
import { clientProof, newNonce, proofsEqual, serverProof } from './ipc-auth.js';
import { onLines, parseLine, writeLine } from './ipc-lines.js';

export interface SendOptions {
  readonly endpoint: string;
  /**
   * Read when the server's challenge arrives, not before: with nothing listening the answer is
   * "not running", whether or not there is a secret to read.
   */
  readonly secret: () => Buffer;
  readonly command: IpcCommand;
  /** The whole exchange, connect to reply. */
  readonly timeoutMs: number;
}

/**
 * Sends one authenticated command to the running agent and returns its reply. The server must prove
 * it knows the secret before this side sends anything derived from it: a process squatting on the
 * endpoint gets a nonce and nothing else. Errors:
 * - ERR_IPC_NOT_RUNNING: nothing listens on the endpoint;
 * - ERR_IPC_AUTH (exit 4): the other side could not prove the secret (a squatter, or our secret
 *   differs from the agent's), or it refused ours;
 * - ERR_IPC_TIMEOUT (exit 5): no complete reply in time;
 * - ERR_IPC_PROTOCOL: the other side does not speak this protocol.
 */
export function sendCommand(options: SendOptions): Promise<Reply> {
  const { endpoint, secret, command, timeoutMs } = options;
  return new Promise((resolve, reject) => {
    const socket = net.connect(endpoint);
    const clientNonce = newNonce();
    let challenged = false;
    let settled = false;
    /** Ends the exchange with an error or the reply; returns false: read nothing more. */
    const settle = (error: OutpostError | null, reply?: Reply): false => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(reply as Reply);
      return false;
    };
    const timer = setTimeout(
      () => settle(new OutpostError(ErrorCode.IPC_TIMEOUT, `The agent did not answer "${command}" within ${timeoutMs} ms (${endpoint}).`)),
      timeoutMs,
    );

    socket.once('connect', () => writeLine(socket, { v: IPC_PROTOCOL_VERSION, type: 'hello', nonce: clientNonce, client_pid: process.pid }));
    socket.on('error', (error) => {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') {
        settle(new OutpostError(ErrorCode.IPC_NOT_RUNNING, `No Outpost agent is listening on ${endpoint}.`));
      } else {
        settle(new OutpostError(ErrorCode.IPC_PROTOCOL, `IPC connection to ${endpoint} failed: ${code ?? error.message}.`, { cause: error }));
      }
    });
    socket.on('close', () =>
      settle(
        challenged
          ? new OutpostError(ErrorCode.IPC_PROTOCOL, `The agent closed the connection without a reply (${endpoint}).`)
          : new OutpostError(ErrorCode.IPC_PROTOCOL, `The process on ${endpoint} closed the connection before proving it is the agent.`),
      ),
    );
    const onLine = (line: string): boolean => {
      if (!challenged) {
        const challenge = parseLine(Challenge, line);
        if (!challenge.ok) {
          // A server may answer a hello with a reply only to refuse it (bad_request).
          const refusal = parseLine(Reply, line);
          if (refusal.ok) return settle(null, refusal.value);
          return settle(new OutpostError(ErrorCode.IPC_PROTOCOL, `The process on ${endpoint} does not speak Outpost IPC v${IPC_PROTOCOL_VERSION} (${challenge.problem}).`));
        }
        let key: Buffer;
        try {
          key = secret();
        } catch (error) {
          return settle(error instanceof OutpostError ? error : new OutpostError(ErrorCode.IPC_SECRET, `Cannot read the IPC secret: ${String(error)}`, { cause: error }));
        }
        if (!proofsEqual(serverProof(key, clientNonce, challenge.value.nonce), challenge.value.proof)) {
          return settle(
            new OutpostError(
              ErrorCode.IPC_AUTH,
              `The process on ${endpoint} could not prove it knows this installation's IPC secret: either the secret changed since the agent started (restart the agent), or something else is squatting on the endpoint. Nothing was sent to it.`,
            ),
          );
        }
        challenged = true;
        writeLine(socket, { v: IPC_PROTOCOL_VERSION, type: 'request', command, proof: clientProof(key, challenge.value.nonce, clientNonce, command) });
        return true;
      }
      const reply = parseLine(Reply, line);
      if (!reply.ok) return settle(new OutpostError(ErrorCode.IPC_PROTOCOL, `The agent sent an invalid reply (${reply.problem}).`));
      if (reply.value.status === 'invalid_secret') {
        return settle(new OutpostError(ErrorCode.IPC_AUTH, 'The agent refused this command: authentication failed (the IPC secret does not match).'));
      }
      return settle(null, reply.value);
    };
    onLines(socket, IPC_MAX_MESSAGE_BYTES, onLine, () =>
      settle(new OutpostError(ErrorCode.IPC_PROTOCOL, `The process on ${endpoint} sent a message over ${IPC_MAX_MESSAGE_BYTES} bytes.`)),
    );
  });
}
