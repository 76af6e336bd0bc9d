import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Challenge, IPC_MAX_REPLY_BYTES, IPC_PROTOCOL_VERSION, type IpcCommand, Reply } from '../../common/ipc.js';
import { errnoCode, ErrorCode, isOutpostError, OutpostError } from '../../base/errors.js';
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
  /** The command's parameters (COMMAND_ARGS), sent as JSON text and bound into the proof. */
  readonly args?: unknown;
  /** The whole exchange, connect to reply, retries included. */
  readonly timeoutMs: number;
  /**
   * Connect again, until the deadline, when the connection is dropped before the reply (closed,
   * EPIPE, ECONNRESET, EAGAIN): what the agent does to its oldest connections when a flood of them
   * fills its limit (IpcServer). Every command may be sent again: none does harm twice (a repeated
   * force_restart finds the agent already stopping). Off, a drop is ERR_IPC_PROTOCOL at once (the
   * agent's own probe of the endpoint, for which a peer that hangs up is a stranger, not a busy agent).
   */
  readonly retryDropped?: boolean;
}

/** How long to wait before connecting again after a drop: doubling from the first, up to the last. */
const RETRY_DELAY_MS = { first: 20, max: 200 } as const;

/**
 * Sends one authenticated command to the running agent and returns its reply. The server must prove
 * it knows the secret before this side sends anything derived from it: a process squatting on the
 * endpoint gets a nonce and nothing else. Errors:
 * - ERR_IPC_NOT_RUNNING: nothing listens on the endpoint;
 * - ERR_IPC_AUTH (exit 4): the other side could not prove the secret (a squatter, or our secret
 *   differs from the agent's), or it refused ours;
 * - ERR_IPC_TIMEOUT (exit 5): no complete reply in time (with `retryDropped`, also: every
 *   connection until then was dropped);
 * - ERR_IPC_PROTOCOL: the other side does not speak this protocol, or (without `retryDropped`)
 *   dropped the connection.
 */
export async function sendCommand(options: SendOptions): Promise<Reply> {
  const deadline = performance.now() + options.timeoutMs;
  let delay: number = RETRY_DELAY_MS.first;
  let drops = 0;
  let lastDrop: OutpostError | undefined;
  for (;;) {
    const attempt = await exchange(options, deadline - performance.now()).catch((error: unknown) => {
      // The deadline came during an attempt after drops (a slow machine): the drops are what the user needs to hear.
      throw lastDrop && isOutpostError(error, ErrorCode.IPC_TIMEOUT) ? droppedUntilDeadline(options, drops, lastDrop) : error;
    });
    if ('reply' in attempt) return attempt.reply;
    if (!options.retryDropped) throw attempt.dropped;
    drops++;
    lastDrop = attempt.dropped;
    if (deadline - performance.now() <= delay) throw droppedUntilDeadline(options, drops, lastDrop);
    await sleep(delay);
    delay = Math.min(delay * 2, RETRY_DELAY_MS.max);
  }
}

function droppedUntilDeadline(options: SendOptions, drops: number, last: OutpostError): OutpostError {
  return new OutpostError(
    ErrorCode.IPC_TIMEOUT,
    `The agent did not answer "${options.command}" within ${options.timeoutMs} ms (${options.endpoint}): the connection was dropped ${drops} time${drops > 1 ? 's' : ''} (${last.message}); something may be flooding its endpoint with connections.`,
    { cause: last, details: { drops } },
  );
}

/** Connection errors that mean "dropped": the server closed this connection (or had no room for it yet). */
const DROPPED_ERRNOS = new Set(['EPIPE', 'ECONNRESET', 'EAGAIN']);

/**
 * One connection's exchange. Resolves with the reply, or with `dropped` (the error to report if it is
 * not retried) when the connection was lost before a reply; rejects with every other error.
 */
function exchange(options: SendOptions, timeoutMs: number): Promise<{ reply: Reply } | { dropped: OutpostError }> {
  const { endpoint, secret, command } = options;
  return new Promise((resolve, reject) => {
    const socket = net.connect(endpoint);
    const clientNonce = newNonce();
    let challenged = false;
    let settled = false;
    /** Ends the exchange (once); returns false: read nothing more. */
    const end = (outcome: () => void): false => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      outcome();
      return false;
    };
    const settle = (error: OutpostError | null, reply?: Reply) => end(() => (error ? reject(error) : resolve({ reply: reply as Reply })));
    const drop = (error: OutpostError) => end(() => resolve({ dropped: error }));
    const timer = setTimeout(
      () => settle(new OutpostError(ErrorCode.IPC_TIMEOUT, `The agent did not answer "${command}" within ${options.timeoutMs} ms (${endpoint}).`)),
      Math.max(0, timeoutMs),
    );

    socket.once('connect', () => writeLine(socket, { v: IPC_PROTOCOL_VERSION, type: 'hello', nonce: clientNonce, client_pid: process.pid }));
    socket.on('error', (error) => {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') {
        settle(new OutpostError(ErrorCode.IPC_NOT_RUNNING, `No Outpost agent is listening on ${endpoint}.`));
        return;
      }
      const failure = new OutpostError(ErrorCode.IPC_PROTOCOL, `IPC connection to ${endpoint} failed: ${code ?? error.message}.`, { cause: error });
      if (code !== undefined && DROPPED_ERRNOS.has(code)) drop(failure);
      else settle(failure);
    });
    socket.on('close', () =>
      drop(
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
        const args = options.args === undefined ? undefined : JSON.stringify(options.args);
        writeLine(socket, {
          v: IPC_PROTOCOL_VERSION,
          type: 'request',
          command,
          ...(args !== undefined && { args }),
          proof: clientProof(key, challenge.value.nonce, clientNonce, command, args),
        });
        return true;
      }
      const reply = parseLine(Reply, line);
      if (!reply.ok) return settle(new OutpostError(ErrorCode.IPC_PROTOCOL, `The agent sent an invalid reply (${reply.problem}).`));
      if (reply.value.status === 'invalid_secret') {
        return settle(new OutpostError(ErrorCode.IPC_AUTH, 'The agent refused this command: authentication failed (the IPC secret does not match).'));
      }
      return settle(null, reply.value);
    };
    onLines(socket, IPC_MAX_REPLY_BYTES, onLine, () =>
      settle(new OutpostError(ErrorCode.IPC_PROTOCOL, `The process on ${endpoint} sent a message over ${IPC_MAX_REPLY_BYTES} bytes.`)),
    );
  });
}
