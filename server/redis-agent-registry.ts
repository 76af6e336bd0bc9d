import { type CommandParser, defineScript } from '@redis/client';
import { type AgentRecord, type AgentRegistry, newToken, type RevokeOutcome, type TokenLookup, tokenHash } from './agent-registry.js';
import type { RedisLink } from './redis-link.js';
import { describeError } from '../app/base/errors.js';

/**
 * Where every node finds the agents (a single Redis; the scripts name keys they compute, which a
 * Redis Cluster would refuse): a hash per agent (token_sha256, enrolled_at, revoked_at), the agent
 * id under each token's hash, and a channel on which a revocation is announced so that every node
 * closes that agent's push channel at once.
 */
const AGENT_PREFIX = 'outpost:agent:';
const TOKEN_PREFIX = 'outpost:token:';
export const AGENT_REVOKED_CHANNEL = 'outpost:agent-revoked';

/*
 * The scripts go through the client's script support (EVALSHA, loaded once), as the report store's
 * does: identifying a token runs on every push channel and report.
 */

/** Atomic, so that two enrollments of one agent at once leave one working token and no orphan. */
const ENROLL = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `
if redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then return 'revoked' end
local old = redis.call('HGET', KEYS[1], 'token_sha256')
if old then redis.call('DEL', ARGV[4] .. old) end
redis.call('HSET', KEYS[1], 'token_sha256', ARGV[2], 'enrolled_at', ARGV[3])
redis.call('SET', ARGV[4] .. ARGV[2], ARGV[1])
return 'ok'`,
  parseCommand(parser: CommandParser, agentId: string, tokenSha256: string, at: string) {
    parser.pushKey(AGENT_PREFIX + agentId);
    parser.push(agentId, tokenSha256, at, TOKEN_PREFIX);
  },
  transformReply: (reply: unknown): 'ok' | 'revoked' => (reply === 'revoked' ? 'revoked' : 'ok'),
});

/** One round trip per request: the agent id under the token, and whether it is revoked. */
const IDENTIFY = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `
local id = redis.call('GET', KEYS[1])
if not id then return false end
return {id, redis.call('HEXISTS', ARGV[1] .. id, 'revoked_at')}`,
  parseCommand(parser: CommandParser, tokenSha256: string) {
    parser.pushKey(TOKEN_PREFIX + tokenSha256);
    parser.push(AGENT_PREFIX);
  },
  transformReply: (reply: unknown): TokenLookup => {
    if (!Array.isArray(reply)) return { kind: 'unknown' };
    const [agentId, revoked] = reply as unknown[];
    if (typeof agentId !== 'string') return { kind: 'unknown' };
    return revoked === 1 ? { kind: 'revoked', agentId } : { kind: 'agent', agentId };
  },
});

const REVOKE = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown agent' end
if redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[1]) == 0 then return 'already revoked' end
return 'revoked'`,
  parseCommand(parser: CommandParser, agentId: string, at: string) {
    parser.pushKey(AGENT_PREFIX + agentId);
    parser.push(at);
  },
  transformReply: (reply: unknown): RevokeOutcome => String(reply) as RevokeOutcome,
});

/** The registry's scripts, for the node's commands client (redis-link.ts). */
export const AGENT_SCRIPTS = { enrollAgent: ENROLL, identifyToken: IDENTIFY, revokeAgent: REVOKE };

export interface RedisAgentRegistryOptions {
  readonly now: () => Date;
  readonly log: (line: string) => void;
  /** An agent was revoked, by any node or by the operator command: close its push channel here. Omitted: no subscription (the operator command). */
  readonly onRevoked?: (agentId: string) => void;
}

/**
 * The agents of a fleet of nodes, in Redis. A request while Redis is unreachable fails at once (the
 * commands client has no offline queue; the node answers 503: the agent keeps its report and
 * retries), rather than letting an unchecked token in.
 */
export class RedisAgentRegistry implements AgentRegistry {
  readonly #link: RedisLink;
  readonly #options: RedisAgentRegistryOptions;

  /**
   * On a node's link, or an operator command's (RedisLink.openOneShot), which its opener closes. With
   * `onRevoked` (a node), it listens for revocations.
   */
  constructor(link: RedisLink, options: RedisAgentRegistryOptions) {
    this.#link = link;
    this.#options = options;
    const { onRevoked, log } = options;
    if (!onRevoked) return;
    link.outages.waits('enrollments and new push channels are answered 503');
    link.subscribe(AGENT_REVOKED_CHANNEL, (agentId) => onRevoked(agentId)).catch((error: unknown) => {
      log(`agents: cannot subscribe to ${AGENT_REVOKED_CHANNEL}: ${describeError(error)}`);
    });
  }

  async enroll(agentId: string): Promise<{ token: string } | 'revoked'> {
    const token = newToken();
    const answer = await this.#link.commands.enrollAgent(agentId, tokenHash(token), this.#options.now().toISOString());
    return answer === 'revoked' ? 'revoked' : { token };
  }

  identify(token: string): Promise<TokenLookup> {
    return this.#link.commands.identifyToken(tokenHash(token));
  }

  async revoke(agentId: string): Promise<RevokeOutcome> {
    const answer = await this.#link.commands.revokeAgent(agentId, this.#options.now().toISOString());
    if (answer === 'revoked') await this.#link.commands.publish(AGENT_REVOKED_CHANNEL, agentId);
    return answer;
  }

  async list(): Promise<AgentRecord[]> {
    const records: AgentRecord[] = [];
    for await (const keys of this.#link.commands.scanIterator({ MATCH: `${AGENT_PREFIX}*`, COUNT: 1000 })) {
      for (const key of keys) {
        const fields = await this.#link.commands.hGetAll(key);
        records.push({ agent_id: key.slice(AGENT_PREFIX.length), enrolled_at: fields.enrolled_at ?? '', revoked_at: fields.revoked_at ?? null });
      }
    }
    return records.sort((a, b) => a.enrolled_at.localeCompare(b.enrolled_at));
  }

  /** The link is its opener's to close. */
  async close(): Promise<void> {}
}
