import { type CommandParser, createClient, defineScript } from '@redis/client';
import { redactSecrets } from '../app/base/redact.js';
import { type AgentRecord, type AgentRegistry, newToken, type RevokeOutcome, type TokenLookup, tokenHash } from './agent-registry.js';
import { ONE_SHOT_SOCKET, RedisOutages } from './redis-outages.js';

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

/** Commands fail at once while disconnected instead of queueing behind an outage; the operator command's client does not reconnect. */
function registryClient(url: string, oneShot: boolean) {
  return createClient({ url, disableOfflineQueue: true, scripts: { enrollAgent: ENROLL, identifyToken: IDENTIFY, revokeAgent: REVOKE }, ...(oneShot && { socket: ONE_SHOT_SOCKET }) });
}

export interface RedisAgentRegistryOptions {
  readonly url: string;
  readonly now: () => Date;
  readonly log: (line: string) => void;
  /** The node's Redis state, shared by its users of Redis. Omitted: one of the registry's own (the operator command). */
  readonly outages?: RedisOutages;
  /** An agent was revoked, by any node or by the operator command: close its push channel here. Omitted: no subscription (the operator command). */
  readonly onRevoked?: (agentId: string) => void;
}

/**
 * The agents of a fleet of nodes, in Redis. A request while Redis is unreachable fails (the node
 * answers 503: the agent keeps its report and retries), rather than letting an unchecked token in.
 */
export class RedisAgentRegistry implements AgentRegistry {
  readonly #options: RedisAgentRegistryOptions;
  readonly #client: ReturnType<typeof registryClient>;
  readonly #subscriber: ReturnType<typeof registryClient> | undefined;
  readonly #outages: RedisOutages;
  #closed = false;

  private constructor(options: RedisAgentRegistryOptions, oneShot: boolean) {
    this.#options = options;
    this.#client = registryClient(options.url, oneShot);
    this.#subscriber = options.onRevoked ? this.#client.duplicate() : undefined;
    this.#outages = options.outages ?? new RedisOutages(redactSecrets(options.url), options.log);
  }

  /** Resolves once connected; with `waitForRedis` false (a server), starts without Redis and connects when it can. */
  static async open(options: RedisAgentRegistryOptions, waitForRedis: boolean): Promise<RedisAgentRegistry> {
    const registry = new RedisAgentRegistry(options, waitForRedis);
    const where = redactSecrets(options.url);
    registry.#outages.watch('enrollments, reports and new push channels are answered 503', registry.#client, registry.#subscriber);
    const { onRevoked } = options;
    const subscribed =
      registry.#subscriber && onRevoked
        ? registry.#subscriber
            .connect()
            .then((subscriber) => subscriber.subscribe(AGENT_REVOKED_CHANNEL, (agentId) => onRevoked(agentId)))
        : Promise.resolve();
    const connected = Promise.all([registry.#client.connect(), subscribed]).then(() => {
      if (onRevoked) options.log(`agents: kept in redis ${where}; revocations heard on ${AGENT_REVOKED_CHANNEL}`);
    });
    if (waitForRedis) {
      try {
        await connected;
      } catch (error) {
        await registry.close();
        throw error;
      }
    } else {
      connected.catch((error: unknown) => {
        if (!registry.#closed) options.log(`agents: cannot connect to redis ${where}: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
    return registry;
  }

  async enroll(agentId: string): Promise<{ token: string } | 'revoked'> {
    const token = newToken();
    const answer = await this.#client.enrollAgent(agentId, tokenHash(token), this.#options.now().toISOString());
    return answer === 'revoked' ? 'revoked' : { token };
  }

  identify(token: string): Promise<TokenLookup> {
    return this.#client.identifyToken(tokenHash(token));
  }

  async revoke(agentId: string): Promise<RevokeOutcome> {
    const answer = await this.#client.revokeAgent(agentId, this.#options.now().toISOString());
    if (answer === 'revoked') await this.#client.publish(AGENT_REVOKED_CHANNEL, agentId);
    return answer;
  }

  async list(): Promise<AgentRecord[]> {
    const records: AgentRecord[] = [];
    for await (const keys of this.#client.scanIterator({ MATCH: `${AGENT_PREFIX}*`, COUNT: 1000 })) {
      for (const key of keys) {
        const fields = await this.#client.hGetAll(key);
        records.push({ agent_id: key.slice(AGENT_PREFIX.length), enrolled_at: fields.enrolled_at ?? '', revoked_at: fields.revoked_at ?? null });
      }
    }
    return records.sort((a, b) => a.enrolled_at.localeCompare(b.enrolled_at));
  }

  async close(): Promise<void> {
    this.#closed = true;
    // A shared state is the node's to close; the registry's own is silenced here.
    if (!this.#options.outages) this.#outages.close();
    for (const client of [this.#subscriber, this.#client]) if (client?.isOpen) client.destroy();
  }
}
