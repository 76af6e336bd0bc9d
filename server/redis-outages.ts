/**
 * What a node's Redis users share. A node works on without Redis (each says what it answers
 * meanwhile), and its clients reconnect by themselves: a node's log says once that Redis went away
 * and once that it is back, however many clients noticed and however often they retried.
 */

/**
 * Redis not answering within this counts as down: a connection attempt of an operator command, a
 * report being stored (within the agent's own 10 s timeout for a report, so that it hears 503).
 */
export const REDIS_TIMEOUT_MS = 5_000;

/** The socket of an operator command's client: it fails at once when Redis is away, instead of reconnecting for ever. */
export const ONE_SHOT_SOCKET = { connectTimeout: REDIS_TIMEOUT_MS, reconnectStrategy: false } as const;

/** What a client must offer to be watched (the @redis/client clients do). */
interface Watchable {
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export class RedisOutages {
  readonly #log: (line: string) => void;
  readonly #says: { readonly down: (why: string) => string; readonly back: string };
  #down = false;
  #closed = false;

  /** `says.down(why)` is logged when an outage starts, `says.back` when it ends. */
  constructor(log: (line: string) => void, says: { readonly down: (why: string) => string; readonly back: string }) {
    this.#log = log;
    this.#says = says;
  }

  /** Every error of these clients marks an outage (the client then retries by itself). */
  watch(...clients: readonly (Watchable | undefined)[]): void {
    for (const client of clients) client?.on('error', (error) => this.down(error.message));
  }

  down(why: string): void {
    if (this.#down || this.#closed) return;
    this.#down = true;
    this.#log(this.#says.down(why));
  }

  back(): void {
    if (!this.#down || this.#closed) return;
    this.#down = false;
    this.#log(this.#says.back);
  }

  /** Silent from now on: a closing node's clients fail, and that is no outage. */
  close(): void {
    this.#closed = true;
  }
}
