import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { describeError } from '../app/base/errors.js';
import { jsonLineOf, parseJsonLines } from '../app/base/jsonl.js';

/** An enrolled agent, as an operator lists it. */
export interface AgentRecord {
  readonly agent_id: string;
  /** ISO 8601: its last enrollment (an agent that lost its token enrolls again, and the old one stops working). */
  readonly enrolled_at: string;
  readonly revoked_at: string | null;
}

/** What a presented token turns out to be. */
export type TokenLookup = { readonly kind: 'agent'; readonly agentId: string } | { readonly kind: 'revoked'; readonly agentId: string } | { readonly kind: 'unknown' };

export type RevokeOutcome = 'revoked' | 'already revoked' | 'unknown agent';

/**
 * The agents a backend knows, by token. Tokens are kept only as their SHA-256: a stolen store
 * holds no credential. Two stores: a file for one node (FileAgentRegistry), Redis for several
 * (redis-agent-registry.ts); `outpost-server agents` reads and revokes in either.
 */
export interface AgentRegistry {
  /** A new token for `agentId` (its previous one stops working), or 'revoked' for an agent an operator revoked. */
  enroll(agentId: string): Promise<{ readonly token: string } | 'revoked'>;
  identify(token: string): Promise<TokenLookup>;
  revoke(agentId: string): Promise<RevokeOutcome>;
  list(): Promise<AgentRecord[]>;
  close(): Promise<void>;
}

/** 32 random bytes, base64url (AGENT_TOKEN in app/common/enrollment.ts). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** One line of the agents file. */
const AgentEvent = z.discriminatedUnion('event', [
  z.strictObject({ event: z.literal('enrolled'), agent_id: z.string().min(1).max(100), token_sha256: z.string().regex(/^[0-9a-f]{64}$/), at: z.string() }),
  z.strictObject({ event: z.literal('revoked'), agent_id: z.string().min(1).max(100), at: z.string() }),
]);
type AgentEvent = z.infer<typeof AgentEvent>;

export interface FileAgentRegistryOptions {
  /** `agents.jsonl`: one event per line (enrolled, revoked), appended by the server and by `outpost-server agents revoke`. */
  readonly file: string;
  readonly now: () => Date;
  readonly log: (line: string) => void;
  /** How often a running server reads what others appended (a revocation); 0: never (the operator command). */
  readonly followMs: number;
  /** An agent was revoked (seen here or appended by the operator command): close its push channel. */
  readonly onRevoked?: (agentId: string) => void;
}

interface Agent {
  tokenSha256: string;
  enrolledAt: string;
  revokedAt: string | null;
}

/**
 * The registry of a single node: an append-only JSON Lines file of events, so that the operator
 * command can revoke an agent while the server runs (each appends whole lines with O_APPEND) and the
 * server follows the file (followMs) to learn of it. Lines that do not parse (a torn last line
 * after a crash) are skipped. An enrollment is on disk (fsynced) before its token is handed out.
 * The file grows by a line per enrollment (about 150 bytes): 100,000 agents make 15 MB, read at start.
 */
export class FileAgentRegistry implements AgentRegistry {
  readonly #options: FileAgentRegistryOptions;
  readonly #agents = new Map<string, Agent>();
  readonly #byToken = new Map<string, string>();
  /** Bytes of the file read so far (always at a line's end). */
  #offset = 0;
  #follow: NodeJS.Timeout | undefined;
  /** Past the first read: a revocation read now is news (the ones at start have no push channel to close). */
  #started = false;
  #reading: Promise<void> = Promise.resolve();

  private constructor(options: FileAgentRegistryOptions) {
    this.#options = options;
  }

  static async open(options: FileAgentRegistryOptions): Promise<FileAgentRegistry> {
    await fs.promises.mkdir(path.dirname(options.file), { recursive: true });
    // It names every agent: readable by the server's user only.
    await (await fs.promises.open(options.file, 'a', 0o600)).close();
    const registry = new FileAgentRegistry(options);
    const skipped = await registry.#readNew();
    registry.#started = true;
    if (skipped > 0) options.log(`agents: skipped ${skipped} unreadable line(s) in ${options.file} (a torn last line is left by a crash mid-write)`);
    if (options.followMs > 0) registry.#follow = setInterval(() => void registry.#catchUp(), options.followMs).unref();
    return registry;
  }

  async enroll(agentId: string): Promise<{ token: string } | 'revoked'> {
    await this.#catchUp();
    if (this.#agents.get(agentId)?.revokedAt) return 'revoked';
    const token = newToken();
    await this.#append({ event: 'enrolled', agent_id: agentId, token_sha256: tokenHash(token), at: this.#options.now().toISOString() });
    return { token };
  }

  async identify(token: string): Promise<TokenLookup> {
    const agentId = this.#byToken.get(tokenHash(token));
    if (agentId === undefined) return { kind: 'unknown' };
    return this.#agents.get(agentId)?.revokedAt ? { kind: 'revoked', agentId } : { kind: 'agent', agentId };
  }

  async revoke(agentId: string): Promise<RevokeOutcome> {
    await this.#catchUp();
    const agent = this.#agents.get(agentId);
    if (!agent) return 'unknown agent';
    if (agent.revokedAt) return 'already revoked';
    await this.#append({ event: 'revoked', agent_id: agentId, at: this.#options.now().toISOString() });
    return 'revoked';
  }

  async list(): Promise<AgentRecord[]> {
    await this.#catchUp();
    return [...this.#agents].map(([agent_id, agent]) => ({ agent_id, enrolled_at: agent.enrolledAt, revoked_at: agent.revokedAt }));
  }

  async close(): Promise<void> {
    clearInterval(this.#follow);
    await this.#reading;
  }

  /** Appends one event (starting a fresh line after a torn one), fsyncs, then applies it by reading the file on. */
  async #append(event: AgentEvent): Promise<void> {
    const handle = await fs.promises.open(this.#options.file, 'a+', 0o600);
    try {
      const { size } = await handle.stat();
      const last = Buffer.alloc(1);
      if (size > 0) await handle.read(last, 0, 1, size - 1);
      const fresh = size > 0 && last[0] !== 0x0a ? '\n' : '';
      await handle.appendFile(`${fresh}${JSON.stringify(event)}\n`, 'utf8');
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await this.#catchUp();
  }

  /** Reads what was appended since the last read; one read at a time. */
  #catchUp(): Promise<void> {
    this.#reading = this.#reading.then(() => this.#readNew()).then(
      () => undefined,
      (error: unknown) => this.#options.log(`agents: cannot read ${this.#options.file}: ${describeError(error)}`),
    );
    return this.#reading;
  }

  /** Applies the whole lines appended since the last read; returns how many did not parse. */
  async #readNew(): Promise<number> {
    const { size } = await fs.promises.stat(this.#options.file);
    if (size <= this.#offset) return 0;
    const handle = await fs.promises.open(this.#options.file, 'r');
    let whole: Buffer;
    try {
      const bytes = Buffer.alloc(size - this.#offset);
      await handle.read(bytes, 0, bytes.length, this.#offset);
      // A line still being written is read next time, whole.
      whole = bytes.subarray(0, bytes.lastIndexOf(0x0a) + 1);
      this.#offset += whole.length;
    } finally {
      await handle.close();
    }
    const { entries, skipped } = parseJsonLines(whole, jsonLineOf(AgentEvent));
    for (const event of entries) this.#apply(event);
    return skipped.length;
  }

  #apply(event: AgentEvent): void {
    const agent = this.#agents.get(event.agent_id);
    if (event.event === 'enrolled') {
      if (agent) this.#byToken.delete(agent.tokenSha256);
      this.#agents.set(event.agent_id, { tokenSha256: event.token_sha256, enrolledAt: event.at, revokedAt: agent?.revokedAt ?? null });
      this.#byToken.set(event.token_sha256, event.agent_id);
    } else if (agent && !agent.revokedAt) {
      agent.revokedAt = event.at;
      if (this.#started) this.#options.onRevoked?.(event.agent_id);
    }
  }
}
