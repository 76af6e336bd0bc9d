import * as z from 'zod';

/**
 * What the backend pushes over its WebSocket (`/ws`). A push is only a hint to check now: everything
 * the agent acts on comes from the signed feed, so a forged push costs at most one check.
 */
export const UpdateRequired = z
  .object({
    type: z.literal('agent:update_required'),
    /** The version of the feed's timestamp.json that triggered the push (for the log). */
    feed_version: z.number().int().nonnegative(),
  })
  .strict();
export type UpdateRequired = z.infer<typeof UpdateRequired>;

export const PushMessage = z.discriminatedUnion('type', [UpdateRequired]);
export type PushMessage = z.infer<typeof PushMessage>;

/** Bigger pushes are refused by the agent's WebSocket client (ws maxPayload). */
export const PUSH_MAX_BYTES = 4 * 1024;
