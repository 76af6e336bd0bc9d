import { type ApiCall, type ApiMethod, ApiResult, type ReadParams } from '../common/diagnostics.js';
import { type Carrier, CarrierError, checkedResult, type LinkState, type Results } from './carrier.js';

export interface SocketCarrierOptions {
  /** ws(s)://<the page's own host>/api: `outpost diagnostics` serves the page and its socket together. */
  readonly url: string;
  /** The wait before the first reconnection, doubled at each failed attempt up to `maxRetryMs`. */
  readonly firstRetryMs: number;
  readonly maxRetryMs: number;
  /** How long a call waits for its answer before it fails (the agent may be stuck, the link not yet known dead). */
  readonly callTimeoutMs: number;
}

interface Pending {
  readonly answer: (result: ApiResult) => void;
  readonly fail: (error: Error) => void;
}

/**
 * Carrier 2, the headless page: `ApiCall` messages over a WebSocket to `outpost diagnostics`, each
 * answered by the `ApiResult` of the same id. When the socket drops, pending calls fail, new calls
 * fail at once, and it reconnects with backoff until it is disposed of.
 */
export class SocketCarrier implements Carrier {
  readonly #options: SocketCarrierOptions;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(link: LinkState) => void>();
  #socket: WebSocket | null = null;
  #link: LinkState = { kind: 'connecting' };
  #failures = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /** Ids start at 1: a refusal with id 0 answers a call the other side could not read, none of ours. */
  #nextId = 1;
  #disposed = false;

  constructor(options: SocketCarrierOptions) {
    this.#options = options;
    this.#connect();
  }

  read(params: ReadParams): Promise<Results['read']> {
    return this.#call('read', (id) => ({ id, method: 'read', params }));
  }

  checkNow(): Promise<Results['check_now']> {
    return this.#call('check_now', (id) => ({ id, method: 'check_now' }));
  }

  openLogFolder(): Promise<Results['open_log_folder']> {
    return this.#call('open_log_folder', (id) => ({ id, method: 'open_log_folder' }));
  }

  bundle(): Promise<Results['bundle']> {
    return this.#call('bundle', (id) => ({ id, method: 'bundle' }));
  }

  watchLink(listener: (link: LinkState) => void): () => void {
    this.#listeners.add(listener);
    listener(this.#link);
    return () => this.#listeners.delete(listener);
  }

  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#retry);
    this.#listeners.clear();
    this.#socket?.close();
    this.#socket = null;
    this.#failAll(new Error('The diagnostics page was closed.'));
  }

  #connect(): void {
    const socket = new WebSocket(this.#options.url);
    this.#socket = socket;
    socket.addEventListener('open', () => {
      this.#failures = 0;
      this.#setLink({ kind: 'open' });
    });
    socket.addEventListener('message', (event) => this.#receive(event.data));
    // 'error' is always followed by 'close', which says all that the page can act on.
    socket.addEventListener('close', () => this.#lost(socket));
  }

  #lost(socket: WebSocket): void {
    if (this.#disposed || socket !== this.#socket) return;
    this.#socket = null;
    this.#failAll(new Error('The connection to the agent dropped before it answered.'));
    this.#failures++;
    const retryInMs = Math.min(this.#options.maxRetryMs, this.#options.firstRetryMs * 2 ** (this.#failures - 1));
    this.#setLink({ kind: 'down', attempt: this.#failures, retryInMs });
    this.#retry = setTimeout(() => this.#connect(), retryInMs);
  }

  #setLink(link: LinkState): void {
    this.#link = link;
    for (const listener of this.#listeners) listener(link);
  }

  #receive(data: unknown): void {
    if (typeof data !== 'string') return;
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    const result = ApiResult.safeParse(message);
    // Not an answer, or the answer to a call that already timed out: nobody waits for it.
    if (result.success) this.#pending.get(result.data.id)?.answer(result.data);
  }

  async #call<M extends ApiMethod>(method: M, make: (id: number) => ApiCall): Promise<Results[M]> {
    const socket = await this.#openSocket();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        this.#pending.delete(id);
      };
      const timer = setTimeout(() => {
        settle();
        reject(new Error(`The agent did not answer "${method}" within ${Math.round(this.#options.callTimeoutMs / 1000)} s.`));
      }, this.#options.callTimeoutMs);
      this.#pending.set(id, {
        answer: (result) => {
          settle();
          try {
            if (!result.ok) throw new CarrierError(result.error.code, result.error.message);
            resolve(checkedResult(method, result.result));
          } catch (error) {
            reject(error);
          }
        },
        fail: (error) => {
          settle();
          reject(error);
        },
      });
      socket.send(JSON.stringify(make(id)));
    });
  }

  /** The socket once open; a call made while the first connection is still being made waits for it. */
  async #openSocket(): Promise<WebSocket> {
    const socket = this.#socket;
    if (socket?.readyState === WebSocket.OPEN) return socket;
    if (socket?.readyState !== WebSocket.CONNECTING) throw notConnected();
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('close', () => reject(notConnected()), { once: true });
    });
    return socket;
  }

  #failAll(error: Error): void {
    for (const pending of [...this.#pending.values()]) pending.fail(error);
  }
}

function notConnected(): Error {
  return new Error('This page is not connected to outpost diagnostics right now; it reconnects by itself.');
}
