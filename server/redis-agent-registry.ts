import { createClient } from '@redis/client';
import { redactSecrets } from '../app/base/redact.js';
import { type AgentRecord, type AgentRegistry, newToken, type RevokeOutcome, type TokenLookup, tokenHash } from './agent-registry.js';

/**
 * Where every node finds the agents (a single Redis; the scripts name keys they compute, which a
 * Redis Cluster would refuse): a hash per agent (token_sha256, enrolled_at, revoked_at), the agent
 * id under each token's hash, and a channel on which a revocation is announced so that every node
 * closes that agent's push channel at once.
 */
const AGENT_PREFIX = 'outpost:agent:';
const TOKEN_PREFIX = 'outpost:token:';
export const AGENT_REVOKED_CHANNEL = 'outpost:agent-revoked';

/** Atomic, so that two enrollments of one agent at once leave one working token and no orphan. */
const ENROLL = `
if redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then return 'revoked' end
local old = redis.call('HGET', KEYS[1], 'token_sha256')
if old then redis.call('DEL', ARGV[4] .. old) end
redis.call('HSET', KEYS[1], 'token_sha256', ARGV[2], 'enrolled_at', ARGV[3])
redis.call('SET', ARGV[4] .. ARGV[2], ARGV[1])
return 'ok'`;

/** One round trip per request: the agent id under the token, and whether it is revoked. */
const IDENTIFY = `
local id = redis.call('GET', KEYS[1])
if not id then return false end
return {id, redis.call('HEXISTS', ARGV[1] .. id, 'revoked_at')}`;

const REVOKE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown agent' end
if redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[1]) == 0 then return 'already revoked' end
return 'revoked'`;

export interface RedisAgentRegistryOptions {
  readonly url: string;
  readonly now: () => Date;
  readonly log: (line: string) => void;
  /** An agent was revoked, by any node or by the operator command: close its push channel here. Omitted: no subscription (the operator command). */
  readonly onRevoked?: (agentId: string) => void;
}

/**
 * The agents of a fleet of nodes, in Redis. A request while Redis is unreachable fails (the node
 * answers 503: the agent keeps its report and retries), rather than letting an unchecked token in.
 */
export class RedisAgentRegistry implements AgentRegistry {
  readonly #options: RedisAgentRegistryOptions;
  readonly #client: ReturnType<typeof createClient>;
  readonly #subscriber: ReturnType<typeof createClient> | undefined;
  #closed = false;

  private constructor(options: RedisAgentRegistryOptions, oneShot: boolean) {
    this.#options = options;
    // Commands fail at once while disconnected instead of queueing behind an outage; the operator
    // command gives up on an unreachable Redis instead of reconnecting for ever.
    this.#client = createClient({ url: options.url, disableOfflineQueue: true, ...(oneShot && { socket: { connectTimeout: 5_000, reconnectStrategy: false } }) });
    this.#subscriber = options.onRevoked ? this.#client.duplicate() : undefined;
  }

  /** Resolves once connected; with `waitForRedis` false (a server), starts without Redis and connects when it can. */
  static async open(options: RedisAgentRegistryOptions, waitForRedis: boolean): Promise<RedisAgentRegistry> {
    const registry = new RedisAgentRegistry(options, waitForRedis);
    const where = redactSecrets(options.url);
    let down = false;
    for (const client of [registry.#client, registry.#subscriber]) {
      client?.on('error', (error: Error) => {
        if (down || registry.#closed) return;
        down = true;
        options.log(`agents: redis ${where} unreachable (${error.message}); enrollments, reports and new push channels are answered 503 until it is back`);
      });
      client?.on('ready', () => {
        if (down) options.log(`agents: redis ${where} reachable again`);
        down = false;
      });
    }
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
    const answer = await this.#client.eval(ENROLL, {
      keys: [AGENT_PREFIX + agentId],
      arguments: [agentId, tokenHash(token), this.#options.now().toISOString(), TOKEN_PREFIX],
    });
    return answer === 'revoked' ? 'revoked' : { token };
  }

  async identify(token: string): Promise<TokenLookup> {
    const answer = await this.#client.eval(IDENTIFY, { keys: [TOKEN_PREFIX + tokenHash(token)], arguments: [AGENT_PREFIX] });
    if (!Array.isArray(answer)) return { kind: 'unknown' };
    const [agentId, revoked] = answer;
    if (typeof agentId !== 'string') return { kind: 'unknown' };
    return revoked === 1 ? { kind: 'revoked', agentId } : { kind: 'agent', agentId };
  }

  async revoke(agentId: string): Promise<RevokeOutcome> {
    const answer = String(await this.#client.eval(REVOKE, { keys: [AGENT_PREFIX + agentId], arguments: [this.#options.now().toISOString()] }));
    if (answer === 'revoked') await this.#client.publish(AGENT_REVOKED_CHANNEL, agentId);
    return answer as RevokeOutcome;
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
    for (const client of [this.#subscriber, this.#client]) if (client?.isOpen) client.destroy();
  }
}
