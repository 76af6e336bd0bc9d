import { createClient } from '@redis/client';
import { describeError } from '../app/base/errors.js';
import { redactSecrets } from '../app/base/redact.js';
import { AGENT_SCRIPTS } from './redis-agent-registry.js';
import { ONE_SHOT_SOCKET, RedisOutages, type RedisState } from './redis-outages.js';
import { REPORT_SCRIPTS } from './redis-reports.js';

/**
 * The commands client: every script of the node's Redis layout, loaded once (EVALSHA). No offline
 * queue: while Redis is away a command fails at once (a report or an enrollment is answered 503), not
 * held until it is back.
 */
function commandsClient(url: string, oneShot: boolean) {
  return createClient({ url, disableOfflineQueue: true, scripts: { ...AGENT_SCRIPTS, ...REPORT_SCRIPTS }, ...(oneShot && { socket: ONE_SHOT_SOCKET }) });
}

export type RedisCommands = ReturnType<typeof commandsClient>;

/**
 * A node's connections to Redis: one for commands, one for pub/sub (a subscribed connection can do
 * nothing else), shared by its publishes, agents and reports, with one state (RedisOutages) for the
 * log and `/health`. Both clients reconnect by themselves, and the subscriber subscribes again.
 * An operator command opens a one-shot link instead: commands only, failing at once without Redis.
 */
export class RedisLink {
  readonly commands: RedisCommands;
  readonly outages: RedisOutages;
  /** The URL without its password, for the log. */
  readonly where: string;
  readonly #log: (line: string) => void;
  /** Undefined for an operator command's link, which subscribes to nothing. */
  readonly #subscriber: ReturnType<typeof createClient> | undefined;
  /** Subscriptions asked for and not yet confirmed: the link is not ready before they are. */
  #subscribing = 0;
  #closed = false;

  private constructor(url: string, log: (line: string) => void, oneShot: boolean) {
    this.where = redactSecrets(url);
    this.#log = log;
    this.commands = commandsClient(url, oneShot);
    this.#subscriber = oneShot ? undefined : createClient({ url });
    this.outages = new RedisOutages(this.where, log, this.commands, this.#subscriber);
  }

  /** A node's link: resolves at once, connected or not; Redis may come later. */
  static open(url: string, log: (line: string) => void): RedisLink {
    const link = new RedisLink(url, log, false);
    for (const client of [link.commands, link.#subscriber]) {
      client?.connect().catch((error: unknown) => {
        if (!link.#closed) log(`redis: cannot connect to ${link.where}: ${describeError(error)}`);
      });
    }
    return link;
  }

  /** An operator command's link: rejects when Redis does not answer within REDIS_TIMEOUT_MS. */
  static async openOneShot(url: string): Promise<RedisLink> {
    // No log: an operator command says itself what failed, so its link's outages are not news.
    const link = new RedisLink(url, () => undefined, true);
    try {
      await link.commands.connect();
    } catch (error) {
      link.close();
      throw error;
    }
    return link;
  }

  /**
   * Runs `listener` now if the commands client is connected, and at every (re)connection: a user
   * that started after the first connection still hears of it.
   */
  onReady(listener: () => void): void {
    this.commands.on('ready', listener);
    if (this.commands.isReady) listener();
  }

  /** What `GET /health` shows: ready once both clients are connected and every subscription is confirmed. */
  get state(): RedisState {
    const state = this.outages.state;
    return state === 'ready' && this.#subscribing > 0 ? 'connecting' : state;
  }

  /** Messages of `channel`, from now on (queued until the subscriber connects; kept across reconnections). */
  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    if (!this.#subscriber) throw new Error('an operator command does not subscribe');
    this.#subscribing++;
    try {
      await this.#subscriber.subscribe(channel, listener);
    } finally {
      this.#subscribing--;
    }
    this.#log(`redis: subscribed to ${channel} at ${this.where}`);
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // A closing node's clients fail, and that is no outage.
    this.outages.close();
    for (const client of [this.#subscriber, this.commands]) if (client?.isOpen) client.destroy();
  }
}
