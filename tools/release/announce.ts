import { createClient } from '@redis/client';
import { FEED_VERSION_KEY, PUBLISH_CHANNEL } from '../../app/common/publish-events.js';

/**
 * Tells every outpost-server node of a publish (after the new timestamp is in place): stores the
 * feed version for nodes that are away, then publishes it. Returns how many nodes heard it. Fails
 * at once, saying why, when Redis cannot be reached: the publish itself stands (agents still find
 * it at their next poll), only the push is missing.
 */
export async function announcePublish(url: string, feedVersion: number): Promise<number> {
  const client = createClient({ url, socket: { connectTimeout: 5_000, reconnectStrategy: false } });
  client.on('error', () => {
    // Reported by connect() or the command that fails.
  });
  await client.connect();
  try {
    await client.set(FEED_VERSION_KEY, String(feedVersion));
    return await client.publish(PUBLISH_CHANNEL, String(feedVersion));
  } finally {
    client.destroy();
  }
}
