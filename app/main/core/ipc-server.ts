import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { tryParseJson } from '../../base/jsonl.js';
import {
  COMMAND_ARGS,
  Hello,
  IPC_IDLE_TIMEOUT_MS,
  IPC_MAX_CONNECTIONS,
  IPC_MAX_MESSAGE_BYTES,
  IPC_PROTOCOL_VERSION,
  IPC_TOTAL_TIMEOUT_MS,
  type IpcCommand,
  type Reply,
  Request,
} from '../../common/ipc.js';
import { describeError, errnoCode, ErrorCode, isOutpostError, OutpostError } from '../../base/errors.js';
import { clientProof, newNonce, proofsEqual, serverProof } from './ipc-auth.js';
import { sendCommand } from './ipc-client.js';
import { onLines, parseLine, writeLine } from './ipc-lines.js';
import type { Logger } from '../../base/logger.js';

export type ReplyBody = Omit<Reply, 'v' | 'type'>;

export interface CommandResult {
  readonly reply: ReplyBody;
  /** Work to do once the reply is sent (a shutdown must not cut its own reply off). */
  readonly after?: () => void;
}

/**
 * What the agent does with an authenticated command. `args` are the command's parameters, already
 * checked against COMMAND_ARGS (undefined for a command that takes none).
 */
export type CommandHandler = (command: IpcCommand, context: { readonly clientPid: number; readonly args: unknown }) => CommandResult | Promise<CommandResult>;

export interface IpcServerOptions {
  /** A Unix socket path or a Windows pipe name (`\\.\pipe\...`). */
  readonly endpoint: string;
  readonly secret: Buffer;
  readonly log: Logger;
  readonly handle: CommandHandler;
  /** Whether the endpoint is a file to remove when stale (a Unix socket) or not (a Windows pipe). */
  readonly endpointIsFile: boolean;
}

/**
 * The agent's side of the local IPC. Every connection gets: an idle and a total timeout, a bounded
 * line buffer, and no command before the client has proved it knows the secret. At most
 * IPC_MAX_CONNECTIONS are open at once; a new one beyond that evicts the oldest, so a flood of idle
 * or slow connections costs bounded memory and cannot lock out a real client, which needs only
 * milliseconds for its exchange (refusing newcomers instead, as net.Server's maxConnections does,
 * would let a flood keep `status` out for good).
 */
export class IpcServer {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #options: IpcServerOptions;
  #boundInode: number | undefined;
  #evicted = 0;
  #lastEvictionLog = 0;

  private constructor(options: IpcServerOptions, server: net.Server) {
    this.#options = options;
    this.#server = server;
  }

  static async listen(options: IpcServerOptions): Promise<IpcServer> {
    const server = net.createServer();
    const ipc = new IpcServer(options, server);
    server.on('connection', (socket) => ipc.#accept(socket));
    await ipc.#bind();
    options.log.info('IPC endpoint listening', { endpoint: options.endpoint });
    return ipc;
  }

  /** Stops listening and closes every open connection (shutdown must not wait on a slow client). */
  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    // Our socket file, unless a successor has replaced it (this agent lost the lock and is leaving).
    if (this.#boundInode !== undefined && inodeOf(this.#options.endpoint) === this.#boundInode) fs.rmSync(this.#options.endpoint, { force: true });
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /**
   * Claims the endpoint. We hold the instance lock, so whatever is there belongs to a previous holder
   * (killed, frozen, or about to notice it lost the lock) unless it is a foreign server; we ask it
   * first, without giving anything away (see sendCommand):
   * - nothing answers, or a server that knows our secret (an agent that lost the lock), or one that
   *   accepts and stays silent (a frozen process): take the endpoint;
   * - a server that answers but cannot prove the secret: a squatter; refuse, never hijack.
   */
  async #bind(): Promise<void> {
    const { endpoint, endpointIsFile, log, secret } = this.#options;
    const occupant = await probe(endpoint, secret);
    if (occupant === 'foreign') {
      throw new OutpostError(ErrorCode.IPC_ENDPOINT_BUSY, `Another process is already listening on ${endpoint}; refusing to take it over. Find and stop it.`, {
        details: { endpoint },
      });
    }
    if (occupant !== 'absent') log.warn(`taking over the IPC endpoint from a previous agent that ${occupant === 'ours' ? 'lost the lock but still answers' : 'no longer answers (frozen?)'}`, { endpoint });
    if (!endpointIsFile) {
      await this.#listenOnPipe(endpoint);
      return;
    }
    // A Unix socket is bound under a temporary name and renamed into place: the rename replaces a
    // leftover atomically, and when this server closes, libuv unlinks the name it bound (the
    // temporary one, long gone), never a successor's socket at the real path.
    const leftover = fs.lstatSync(endpoint, { throwIfNoEntry: false });
    if (leftover && !leftover.isSocket()) {
      // Never replaced: a socket is the only thing an agent leaves at this path.
      throw new OutpostError(ErrorCode.IPC_ENDPOINT_BUSY, `The IPC endpoint ${endpoint} is a ${leftover.isDirectory() ? 'folder' : 'file'}, not a socket; no agent leaves one there. Remove it, then start again.`, {
        details: { endpoint },
      });
    }
    const temp = `${endpoint}.${randomBytes(4).toString('hex')}`;
    try {
      await listenOn(this.#server, temp);
      fs.chmodSync(temp, 0o600);
      if (occupant === 'absent' && fs.existsSync(endpoint)) log.warn('replacing a stale IPC socket left by an agent that did not shut down', { endpoint });
      fs.renameSync(temp, endpoint);
      this.#boundInode = fs.statSync(endpoint).ino;
    } catch (error) {
      this.#server.close();
      fs.rmSync(temp, { force: true });
      throw ipcError(endpoint, error);
    }
  }

  /** A pipe name is taken until its last handle closes: a previous agent on its way out gets a moment. */
  async #listenOnPipe(endpoint: string): Promise<void> {
    const deadline = Date.now() + PIPE_RELEASE_WAIT_MS;
    for (;;) {
      try {
        await listenOn(this.#server, endpoint);
        return;
      } catch (error) {
        if (errnoCode(error) !== 'EADDRINUSE' || Date.now() >= deadline) throw ipcError(endpoint, error);
        await sleep(100);
      }
    }
  }

  #accept(socket: net.Socket): void {
    const { log, secret } = this.#options;
    if (this.#sockets.size >= IPC_MAX_CONNECTIONS) this.#evictOldest();
    this.#sockets.add(socket);
    const total = setTimeout(() => socket.destroy(), IPC_TOTAL_TIMEOUT_MS);
    let hello: Hello | undefined;
    let serverNonce = '';
    let done = false;
    socket.setTimeout(IPC_IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(total);
      this.#sockets.delete(socket);
      if (hello && !done) log.info('IPC client left after the challenge (it could not verify this agent: wrong secret?)', { client_pid: hello.client_pid });
    });
    socket.on('error', () => socket.destroy());

    /** Sends the last message of the exchange; returns false: read nothing more. */
    const finish = (body: ReplyBody): false => {
      done = true;
      socket.end(`${JSON.stringify({ v: IPC_PROTOCOL_VERSION, type: 'reply', ...body } satisfies Reply)}\n`);
      return false;
    };

    const onLine = (line: string): boolean => {
      if (!hello) {
        const parsed = parseLine(Hello, line);
        if (!parsed.ok) return finish({ status: 'bad_request', message: `expected hello: ${parsed.problem}` });
        hello = parsed.value;
        serverNonce = newNonce();
        writeLine(socket, { v: IPC_PROTOCOL_VERSION, type: 'challenge', nonce: serverNonce, proof: serverProof(secret, hello.nonce, serverNonce) });
        return true;
      }
      const parsed = parseLine(Request, line);
      if (!parsed.ok) return finish({ status: 'bad_request', message: `expected request: ${parsed.problem}` });
      const request = parsed.value;
      if (!proofsEqual(clientProof(secret, serverNonce, hello.nonce, request.command, request.args), request.proof)) {
        log.warn('IPC request refused: invalid proof (wrong secret, or a replayed exchange)', { client_pid: hello.client_pid, command: request.command });
        return finish({ status: 'invalid_secret', message: 'authentication failed' });
      }
      done = true; // authenticated: what follows is the reply
      const args = parseArgs(request);
      if (!args.ok) return finish({ status: 'bad_request', message: args.problem });
      // The diagnostics page asks every second: its reads are not worth a line each.
      const level = request.command === 'diagnostics' ? 'debug' : 'info';
      const clientPid = hello.client_pid;
      log[level](`IPC command ${request.command}`, { client_pid: clientPid });
      void Promise.resolve()
        .then(() => this.#options.handle(request.command, { clientPid, args: args.value }))
        .then(
          ({ reply, after }) => {
            if (after) socket.once('close', after);
            finish(reply);
          },
          (error: unknown) => {
            log.error(`IPC command ${request.command} failed`, { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
            finish({ status: 'bad_request', message: `the agent could not do "${request.command}": ${describeError(error)}` });
          },
        );
      return false;
    };
    onLines(socket, IPC_MAX_MESSAGE_BYTES, onLine, () => {
      log.warn('IPC message too large; connection closed', { limit: IPC_MAX_MESSAGE_BYTES });
      finish({ status: 'bad_request', message: `message longer than ${IPC_MAX_MESSAGE_BYTES} bytes` });
      socket.destroySoon();
    });
  }

  /** Closes the longest-open connection; logs a flood once per EVICTION_LOG_MS, not once per connection. */
  #evictOldest(): void {
    const [oldest] = this.#sockets;
    oldest?.destroy();
    if (oldest) this.#sockets.delete(oldest);
    this.#evicted++;
    const now = Date.now();
    if (now - this.#lastEvictionLog >= EVICTION_LOG_MS) {
      this.#options.log.warn(`IPC connection limit (${IPC_MAX_CONNECTIONS}) reached: closed the oldest connection(s) to make room`, { closed_since_last_report: this.#evicted });
      this.#evicted = 0;
      this.#lastEvictionLog = now;
    }
  }
}

const EVICTION_LOG_MS = 10_000;
/** How long a silent occupant may take to answer the probe before it counts as frozen. */
const PROBE_TIMEOUT_MS = 1_000;
const PIPE_RELEASE_WAIT_MS = 5_000;

/** The request's arguments, checked against what its command takes. */
function parseArgs(request: Request): { ok: true; value: unknown } | { ok: false; problem: string } {
  const schema = (COMMAND_ARGS as Partial<Record<IpcCommand, z.ZodType>>)[request.command];
  if (request.args === undefined) return schema ? { ok: false, problem: `"${request.command}" needs its arguments` } : { ok: true, value: undefined };
  if (!schema) return { ok: false, problem: `"${request.command}" takes no arguments` };
  const parsed = schema.safeParse(tryParseJson(request.args));
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, problem: `bad arguments for "${request.command}": ${z.prettifyError(parsed.error)}` };
}

function inodeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}

function listenOn(server: net.Server, endpoint: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(endpoint);
  });
}

/** Who is on the endpoint: nobody, an agent that knows our secret, a silent (frozen) process, or a stranger. */
async function probe(endpoint: string, secret: Buffer): Promise<'absent' | 'ours' | 'silent' | 'foreign'> {
  try {
    await sendCommand({ endpoint, secret: () => secret, command: 'status', timeoutMs: PROBE_TIMEOUT_MS });
    return 'ours';
  } catch (error) {
    if (isOutpostError(error, ErrorCode.IPC_NOT_RUNNING)) return 'absent';
    if (isOutpostError(error, ErrorCode.IPC_TIMEOUT)) return 'silent';
    return 'foreign';
  }
}

function ipcError(endpoint: string, error: unknown): OutpostError {
  return new OutpostError(ErrorCode.IPC_ENDPOINT_BUSY, `Cannot listen on the IPC endpoint ${endpoint}: ${errnoCode(error) ?? error}.`, { cause: error });
}
