import { createHash } from 'node:crypto';
import semver from 'semver';
import type { ChannelPointer } from '../../../common/release.js';

export type Decision =
  | { readonly take: true; readonly version: string }
  /** Nothing to do now; `refused` marks an offer that breaks policy (reported: it may be an attack). */
  | { readonly take: false; readonly reason: string; readonly refused: boolean };

export interface DecideInput {
  readonly running: string;
  readonly pointer: ChannelPointer;
  readonly agentId: string;
  readonly allowDowngrade: boolean;
}

/**
 * Whether to take the release a channel offers: a newer version (an older one only where policy
 * allows it), from a version at or above the release's minimum, and inside its staged rollout.
 */
export function decide({ running, pointer, agentId, allowDowngrade }: DecideInput): Decision {
  const offered = pointer.version;
  if (semver.eq(offered, running)) return { take: false, reason: `${running} is the version channel ${pointer.channel} offers`, refused: false };
  if (semver.lt(offered, running) && !allowDowngrade) {
    return { take: false, reason: `channel ${pointer.channel} offers ${offered}, older than the running ${running}; downgrades are not allowed`, refused: true };
  }
  if (pointer.min_version !== null && semver.lt(running, pointer.min_version)) {
    return { take: false, reason: `${offered} needs ${pointer.min_version} or later installed first (running ${running})`, refused: false };
  }
  const bucket = rolloutBucket(agentId, offered);
  if (bucket >= pointer.rollout_percent) {
    return { take: false, reason: `${offered} is rolled out to ${pointer.rollout_percent}% of agents and this one is at ${bucket}%`, refused: false };
  }
  return { take: true, version: offered };
}

/**
 * 0-99, stable for an agent and a version: widening a rollout from 10% to 20% keeps the first 10%
 * and adds more, and each release starts with a different tenth of the fleet.
 */
export function rolloutBucket(agentId: string, version: string): number {
  return createHash('sha256').update(`${agentId}\n${version}`).digest().readUInt32BE(0) % 100;
}
