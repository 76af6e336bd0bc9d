/**
 * How the release tool tells every outpost-server node of a publish through Redis (server/
 * redis-publishes.ts listens, tools/release/announce.ts speaks): the new feed version, in decimal,
 * stored under FEED_VERSION_KEY for nodes that are away, then published on PUBLISH_CHANNEL.
 */
export const PUBLISH_CHANNEL = 'outpost:feed-published';
export const FEED_VERSION_KEY = 'outpost:feed-version';

/** A message or stored value as a feed version, or undefined when it is not one. */
export function parseFeedVersion(text: string): number | undefined {
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

/** A redis:// or rediss:// URL. */
export function isRedisUrl(text: string): boolean {
  try {
    return ['redis:', 'rediss:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}
