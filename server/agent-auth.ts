import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { describeError } from '../app/base/errors.js';
import { tryParseJson } from '../app/base/jsonl.js';
import { AGENT_REVOKED, bearerCredential, type EnrollAnswer, EnrollRequest } from '../app/common/enrollment.js';
import type { AgentRegistry } from './agent-registry.js';
import { readBounded, refuseUnread, replyJson } from './http-replies.js';
import type { OriginPolicy } from './origins.js';
import { PerKeyRateLimit } from './rate-limit.js';

/** An enrollment request is `{"agent_id": "..."}`. */
const ENROLL_BODY_MAX_BYTES = 1024;
/** An agent enrolls once, and again only when its token is lost: a few a minute is plenty. */
export const DEFAULT_ENROLLMENTS_PER_MINUTE = 6;
/** Seconds an agent is told to wait when the registry (Redis) does not answer. */
const REGISTRY_RETRY_AFTER_S = 30;

/** Who is calling, or why not: the status and body to refuse with (app/common/enrollment.ts says what each means to an agent). */
export type Caller =
  | { readonly ok: true; readonly agentId: string }
  | { readonly ok: false; readonly status: 401 | 403 | 503; readonly error: string; readonly code?: string; readonly retryAfterS?: number };

export interface AgentAuthOptions {
  /** The organisation's enrollment secrets (more than one while one is being replaced). */
  readonly secrets: readonly string[];
  readonly registry: AgentRegistry;
  readonly origins: OriginPolicy;
  readonly enrollmentsPerMinute: number;
  readonly now: () => Date;
  readonly log: (line: string) => void;
}

/**
 * Agents that authenticate: `POST /enroll` trades the organisation's enrollment secret for a token
 * of the agent's own, and `identify` checks the token of a report or a push channel. Secrets are
 * compared in constant time, through their hashes (so that their lengths do not show either);
 * tokens are looked up by hash (agent-registry.ts).
 */
export class AgentAuth {
  readonly #options: AgentAuthOptions;
  readonly #secretHashes: readonly Buffer[];
  readonly #enrollments: PerKeyRateLimit;
  /** Refused enrollments are logged at most this often: a wrong secret in a fleet must not flood the log. */
  readonly #refusalLog: PerKeyRateLimit;

  constructor(options: AgentAuthOptions) {
    if (options.secrets.length === 0) throw new RangeError('AgentAuth needs at least one enrollment secret');
    this.#options = options;
    this.#secretHashes = options.secrets.map(sha256);
    this.#enrollments = new PerKeyRateLimit({ perMinute: options.enrollmentsPerMinute, now: options.now });
    this.#refusalLog = new PerKeyRateLimit({ perMinute: 10, now: options.now });
  }

  /** The caller of a report or a push channel, from its `Authorization: Bearer <token>`. */
  async identify(authorization: string | undefined): Promise<Caller> {
    const token = bearerCredential(authorization);
    if (token === undefined) return { ok: false, status: 401, error: 'this server accepts only enrolled agents: send Authorization: Bearer <token> (POST /enroll gives one)' };
    let lookup: Awaited<ReturnType<AgentRegistry['identify']>>;
    try {
      lookup = await this.#options.registry.identify(token);
    } catch (error) {
      return { ok: false, status: 503, error: `the agent registry is unavailable (${describeError(error)}): try again later`, retryAfterS: REGISTRY_RETRY_AFTER_S };
    }
    switch (lookup.kind) {
      case 'agent':
        return { ok: true, agentId: lookup.agentId };
      case 'revoked':
        return { ok: false, status: 403, error: `agent ${lookup.agentId} was revoked by an operator`, code: AGENT_REVOKED };
      case 'unknown':
        return { ok: false, status: 401, error: 'unknown token: enroll again (POST /enroll)' };
    }
  }

  /** `POST /enroll`: 201 with a token, 400 bad body, 401 wrong secret, 403 revoked, 429 too often, 503 registry down. */
  async handleEnroll(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this.#options.origins.allows(req.headers.origin)) {
      refuseUnread(req, res, 403, 'web pages may not enroll agents unless their origin is allowed (outpost-server --allow-origin)');
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      refuseUnread(req, res, 405, 'use POST');
      return;
    }
    const secret = bearerCredential(req.headers.authorization);
    if (secret === undefined || !this.#knownSecret(secret)) {
      if (this.#refusalLog.take('refused').admitted) this.#options.log(`agents: refused an enrollment ${secret === undefined ? 'without a secret' : 'with a wrong enrollment secret'} (logged at most 10 a minute)`);
      refuseUnread(req, res, 401, "enrollment needs the organisation's enrollment secret: Authorization: Bearer <secret>");
      return;
    }
    const body = await readBounded(req, ENROLL_BODY_MAX_BYTES);
    if (body === 'aborted') return;
    if (body === 'too large') {
      refuseUnread(req, res, 413, `body larger than ${ENROLL_BODY_MAX_BYTES} bytes`);
      return;
    }
    const request = EnrollRequest.safeParse(tryParseJson(body.toString('utf8')));
    if (!request.success) {
      replyJson(res, 400, { error: 'the body must be {"agent_id": "<1 to 100 of A-Z a-z 0-9 . _ ->"}' });
      return;
    }
    const agentId = request.data.agent_id;
    const admission = this.#enrollments.take(agentId);
    if (!admission.admitted) {
      res.setHeader('Retry-After', String(admission.retryAfterS));
      replyJson(res, 429, { error: `agent ${agentId} enrolls more than ${this.#options.enrollmentsPerMinute} times a minute: retry after ${admission.retryAfterS} s` });
      return;
    }
    let enrolled: Awaited<ReturnType<AgentRegistry['enroll']>>;
    try {
      enrolled = await this.#options.registry.enroll(agentId);
    } catch (error) {
      res.setHeader('Retry-After', String(REGISTRY_RETRY_AFTER_S));
      replyJson(res, 503, { error: `the agent registry is unavailable (${describeError(error)}): try again later` });
      return;
    }
    if (enrolled === 'revoked') {
      this.#options.log(`agents: refused to enroll ${agentId} again: it was revoked`);
      replyJson(res, 403, { error: `agent ${agentId} was revoked by an operator`, code: AGENT_REVOKED });
      return;
    }
    this.#options.log(`agents: enrolled ${agentId}`);
    replyJson(res, 201, { agent_id: agentId, token: enrolled.token } satisfies EnrollAnswer);
  }

  /** Closes the registry: the file's follow timer (a Redis registry's link is the node's to close). */
  close(): Promise<void> {
    return this.#options.registry.close();
  }

  /** Against every secret, always all of them: how long it takes says nothing of which one matched. */
  #knownSecret(secret: string): boolean {
    const presented = sha256(secret);
    let known = false;
    for (const hash of this.#secretHashes) known = timingSafeEqual(presented, hash) || known;
    return known;
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** A refused Caller as an HTTP answer (reports; the push channel refuses at the upgrade instead). */
export function refuseCaller(req: http.IncomingMessage, res: http.ServerResponse, caller: Extract<Caller, { ok: false }>): void {
  if (caller.retryAfterS !== undefined) res.setHeader('Retry-After', String(caller.retryAfterS));
  if (caller.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
  refuseUnread(req, res, caller.status, caller.error, caller.code ? { code: caller.code } : {});
}
