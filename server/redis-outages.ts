/**
 * What a node's Redis users share. A node works on without Redis (each of its users says what it
 * answers meanwhile), and its clients reconnect by themselves: a node's log says once that Redis went
 * away, with everything that waits for it, and once that it is back, however many clients noticed and
 * however often they retried. `GET /health` shows the same state.
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
  on(event: 'ready', listener: () => void): unknown;
}

/**
 * `connecting`: not every client has connected yet, and none has failed; `ready`: every client is
 * connected and commands are answered; `unreachable`: a client lost Redis, or a command got no answer.
 */
export type RedisState = 'connecting' | 'ready' | 'unreachable';

export class RedisOutages {
  readonly #where: string;
  readonly #log: (line: string) => void;
  /** Each watched client: connected (ready) or not. */
  readonly #clients = new Map<Watchable, boolean>();
  /** What waits for Redis meanwhile, one phrase per user ("pushes wait for it"). */
  readonly #meanwhile: string[] = [];
  /** A command failed although its client had not said it was gone (Redis hung): cleared by an answer or a reconnection. */
  #commandFailed = false;
  #down = false;
  #closed = false;

  /** `where`: Redis's URL without its password, for the log; `clients`: the node's connections to it. */
  constructor(where: string, log: (line: string) => void, ...clients: readonly (Watchable | undefined)[]) {
    this.#where = where;
    this.#log = log;
    for (const client of clients) {
      if (!client) continue;
      this.#clients.set(client, false);
      // Every error marks an outage (the client then retries by itself); a (re)connection may end it.
      client.on('error', (error) => {
        this.#clients.set(client, false);
        this.#fell(error.message);
      });
      client.on('ready', () => {
        this.#clients.set(client, true);
        this.#commandFailed = false;
        this.#rose();
      });
    }
  }

  /** What one user of Redis does while it is away ("pushes wait for it"), for the outage's log line. */
  waits(meanwhile: string): void {
    this.#meanwhile.push(meanwhile);
  }

  /** A command got an error or no answer: Redis counts as down until one is answered or a client reconnects. */
  commandFailed(why: string): void {
    this.#commandFailed = true;
    this.#fell(why);
  }

  /** A command was answered. */
  commandAnswered(): void {
    this.#commandFailed = false;
    this.#rose();
  }

  get state(): RedisState {
    if (this.#down) return 'unreachable';
    return this.#allConnected() ? 'ready' : 'connecting';
  }

  /** Silent from now on: a closing node's clients fail, and that is no outage. */
  close(): void {
    this.#closed = true;
  }

  #fell(why: string): void {
    if (this.#down || this.#closed) return;
    this.#down = true;
    const meanwhile = this.#meanwhile.length > 0 ? `; meanwhile ${this.#meanwhile.join('; ')}` : '';
    this.#log(`redis: ${this.#where} unreachable (${why})${meanwhile}; the clients reconnect by themselves`);
  }

  #rose(): void {
    if (!this.#down || this.#closed || this.#commandFailed || !this.#allConnected()) return;
    this.#down = false;
    this.#log(`redis: ${this.#where} reachable again`);
  }

  #allConnected(): boolean {
    for (const connected of this.#clients.values()) if (!connected) return false;
    return true;
  }
}
