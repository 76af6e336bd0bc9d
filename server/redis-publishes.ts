import { createClient } from '@redis/client';
import { redactSecrets } from '../app/base/redact.js';
import { FEED_VERSION_KEY, PUBLISH_CHANNEL, parseFeedVersion } from '../app/common/publish-events.js';
import type { RedisOutages } from './redis-outages.js';

export interface RedisPublishesOptions {
  /** redis:// or rediss:// */
  readonly url: string;
  readonly log: (line: string) => void;
  /** A feed version newer than any this node has seen: push it to the node's agents. */
  readonly onPublish: (version: number) => void;
  /** The node's Redis state, shared by its users of Redis. */
  readonly outages: RedisOutages;
}

/**
 * Publishes heard through Redis pub/sub, so that every outpost-server node behind a balancer pushes
 * every publish to its own agents; a node learns of one from Redis, never by watching a shared
 * folder (the feed may be on a static host no node can see). The release tool announces a publish
 * (tools/release/announce.ts). A node (re)connecting to Redis reads FEED_VERSION_KEY: a publish announced
 * while it was away is pushed then, not lost. As with the folder watcher, only a version newer than
 * any seen is pushed, and the version at start is not (agents check when they connect anyway).
 *
 * The node does not wait for Redis to start: without it, it serves feed and reports, and says so
 * once per outage; the client reconnects by itself, and subscribes again.
 */
export class RedisPublishes {
  readonly #options: RedisPublishesOptions;
  readonly #client: ReturnType<typeof createClient>;
  readonly #subscriber: ReturnType<typeof createClient>;
  #version: number | null = null;
  #started = false;
  #closed = false;

  private constructor(options: RedisPublishesOptions) {
    this.#options = options;
    this.#client = createClient({ url: options.url });
    this.#subscriber = this.#client.duplicate();
  }

  static start(options: RedisPublishesOptions): RedisPublishes {
    const publishes = new RedisPublishes(options);
    publishes.#connect();
    return publishes;
  }

  /** The newest feed version heard of, or null before any. */
  get version(): number | null {
    return this.#version;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const client of [this.#subscriber, this.#client]) if (client.isOpen) client.destroy();
  }

  #connect(): void {
    const { url, log } = this.#options;
    const where = redactSecrets(url);
    this.#options.outages.watch('publishes are pushed once it is back', this.#client, this.#subscriber);
    this.#client.on('ready', () => void this.#catchUp());
    const subscribed = this.#subscriber
      .connect()
      .then(() => this.#subscriber.subscribe(PUBLISH_CHANNEL, (message) => this.#heard(message, true)))
      .then(() => log(`redis: subscribed to ${PUBLISH_CHANNEL} at ${where}`));
    for (const started of [subscribed, this.#client.connect()]) {
      started.catch((error: unknown) => {
        if (!this.#closed) log(`redis: cannot connect to ${where}: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
  }

  /** At every (re)connection: the newest version announced, in case a publish came while this node was away. */
  async #catchUp(): Promise<void> {
    try {
      const value = await this.#client.get(FEED_VERSION_KEY);
      // The version at start is not pushed; one that came while the node was away is.
      if (value !== null) this.#heard(value, this.#started);
    } catch (error) {
      if (!this.#closed) this.#options.log(`redis: cannot read ${FEED_VERSION_KEY}: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.#started = true;
    }
  }

  #heard(message: string, push: boolean): void {
    const version = parseFeedVersion(message);
    if (version === undefined) {
      this.#options.log(`redis: ignored a message that is not a feed version (${JSON.stringify(message.slice(0, 40))})`);
      return;
    }
    if (this.#version !== null && version <= this.#version) return;
    this.#version = version;
    if (push) this.#options.onPublish(version);
  }
}
