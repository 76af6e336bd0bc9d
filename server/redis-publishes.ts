import { describeError } from '../app/base/errors.js';
import { FEED_VERSION_KEY, PUBLISH_CHANNEL, parseFeedVersion } from '../app/common/publish-events.js';
import type { RedisLink } from './redis-link.js';

export interface RedisPublishesOptions {
  /** The node's connections to Redis. */
  readonly link: RedisLink;
  readonly log: (line: string) => void;
  /** A feed version newer than any this node has seen: push it to the node's agents. */
  readonly onPublish: (version: number) => void;
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
 * once per outage; the link reconnects by itself, and subscribes again.
 */
export class RedisPublishes {
  readonly #options: RedisPublishesOptions;
  #version: number | null = null;
  #started = false;
  #closed = false;

  private constructor(options: RedisPublishesOptions) {
    this.#options = options;
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

  /** The link is the node's to close. */
  close(): void {
    this.#closed = true;
  }

  #connect(): void {
    const { link, log } = this.#options;
    link.outages.waits('publishes are pushed once it is back');
    link.onReady(() => void this.#catchUp());
    link.subscribe(PUBLISH_CHANNEL, (message) => this.#heard(message, true)).catch((error: unknown) => {
      if (!this.#closed) log(`redis: cannot subscribe to ${PUBLISH_CHANNEL}: ${describeError(error)}`);
    });
  }

  /** At every (re)connection: the newest version announced, in case a publish came while this node was away. */
  async #catchUp(): Promise<void> {
    try {
      const value = await this.#options.link.commands.get(FEED_VERSION_KEY);
      // The version at start is not pushed; one that came while the node was away is.
      if (value !== null) this.#heard(value, this.#started);
    } catch (error) {
      if (!this.#closed) this.#options.log(`redis: cannot read ${FEED_VERSION_KEY}: ${describeError(error)}`);
    } finally {
      this.#started = true;
    }
  }

  #heard(message: string, push: boolean): void {
    if (this.#closed) return;
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
