import { describeError } from '../../../base/errors.js';
import { tryParseJson } from '../../../base/jsonl.js';
import type { Logger } from '../../../base/logger.js';
import type { StoragePaths } from '../../../base/storage-layout.js';
import { AGENT_REVOKED, AGENT_TOKEN, ENROLL_PATH, EnrollAnswer, ENROLLMENT_SECRET } from '../../../common/enrollment.js';
import type { Platform } from '../../platform/index.js';
import { type BackendHttp, BackendUnreachable, reasonOf } from './backend-http.js';
import { KeptSecret } from './kept-secret.js';

/** What reports and the push channel need of the agent's credentials. */
export interface BackendCredentials {
  /**
   * `Bearer <token>`, enrolling first when the agent has none; undefined when it has no enrollment
   * secret either (a backend that does not authenticate agents). Throws CredentialsUnavailable.
   */
  authorization(): Promise<string | undefined>;
  /** The backend refused a request that carried authorization(): 401 (token unknown) or 403 (its body says whether revoked). */
  refused(status: 401 | 403, body: string): void;
}

/** No credential to send now; `revoked` when an operator revoked this agent (nothing is worth retrying before a restart). */
export class CredentialsUnavailable extends Error {
  readonly revoked: boolean;

  constructor(message: string, revoked = false) {
    super(message);
    this.name = 'CredentialsUnavailable';
    this.revoked = revoked;
  }
}

/** The enrollment secret and the token, where this agent's storage keeps them (kept-secret.ts). */
export function keptCredentials(platform: Platform, paths: StoragePaths, elevated: boolean): { readonly enrollment: KeptSecret; readonly token: KeptSecret } {
  const { scope } = platform.ipcEndpoint(paths.root);
  const credentials = platform.credentialStore();
  return {
    enrollment: new KeptSecret({ label: 'enrollment secret', file: paths.enrollmentSecret, account: `enroll-${scope}`, pattern: ENROLLMENT_SECRET, elevated, credentials }),
    token: new KeptSecret({ label: 'agent token', file: paths.agentToken, account: `token-${scope}`, pattern: AGENT_TOKEN, elevated, credentials }),
  };
}

export interface AgentCredentialsOptions {
  readonly agentId: string;
  readonly enrollment: KeptSecret;
  readonly token: KeptSecret;
  readonly http: BackendHttp;
  readonly log: Logger;
  readonly now: () => Date;
}

/** After the backend refused the enrollment secret, it is tried again this much later (an administrator may have fixed either side). */
const REFUSED_SECRET_RETRY_MS = 15 * 60_000;

/**
 * The agent's identity at an authenticating backend (app/common/enrollment.ts): its token, kept
 * like the IPC secret, got once by enrolling with the organisation's enrollment secret, which the
 * installer set. A token the backend no longer knows is forgotten and the agent enrolls again; a
 * revoked agent asks for nothing more until it is restarted. Neither secret nor token is ever logged.
 */
export class AgentCredentials implements BackendCredentials {
  readonly #options: AgentCredentialsOptions;
  #token: string | undefined;
  #enrolling: Promise<string | undefined> | undefined;
  #revoked = false;
  /** When the backend refused the enrollment secret (ms), and why; cleared by a successful enrollment. */
  #secretRefused: { at: number; why: string } | undefined;
  #toldNoSecret = false;
  /** When the backend answered /enroll with 404 (it does not authenticate agents); asked again after REFUSED_SECRET_RETRY_MS. */
  #openBackendSince: number | undefined;

  constructor(options: AgentCredentialsOptions) {
    this.#options = options;
  }

  get revoked(): boolean {
    return this.#revoked;
  }

  async authorization(): Promise<string | undefined> {
    if (this.#revoked) throw new CredentialsUnavailable('this agent was revoked by an operator at the backend; restart it once that is undone', true);
    this.#token ??= this.#keptToken();
    if (this.#token !== undefined) return `Bearer ${this.#token}`;
    this.#enrolling ??= this.#enroll().finally(() => {
      this.#enrolling = undefined;
    });
    const token = await this.#enrolling;
    return token === undefined ? undefined : `Bearer ${token}`;
  }

  refused(status: 401 | 403, body: string): void {
    if (status === 403) {
      if (codeOf(body) !== AGENT_REVOKED || this.#revoked) return;
      this.#revoked = true;
      this.#options.log.error(`ERR_AGENT_REVOKED: the backend says an operator revoked this agent (${this.#options.agentId}): it sends no reports and keeps no push channel until it is restarted`);
      return;
    }
    if (this.#token !== undefined) {
      this.#options.log.warn('the backend no longer knows this agent\'s token: enrolling again');
      this.#token = undefined;
      this.#options.token.forget();
    } else if (!this.#toldNoSecret && this.#options.enrollment.read() === null) {
      this.#toldNoSecret = true;
      this.#options.log.error('ERR_BACKEND_CREDENTIAL: the backend accepts only enrolled agents, and this agent has no enrollment secret: an administrator sets it with `outpost --set-enrollment-secret FILE` (installers: /ENROLL=FILE)');
    }
  }

  /** The kept token; a damaged one is forgotten (enrolling again mends it). */
  #keptToken(): string | undefined {
    try {
      return this.#options.token.read()?.value;
    } catch (error) {
      this.#options.log.warn(`the kept agent token cannot be used (${describeError(error)}): forgetting it and enrolling again`);
      this.#options.token.forget();
      return undefined;
    }
  }

  /** The new token, or undefined without an enrollment secret or at a backend that does not enroll agents. */
  async #enroll(): Promise<string | undefined> {
    const { enrollment, http, agentId, log, now } = this.#options;
    const secret = enrollment.read();
    if (secret === null) return undefined;
    if (this.#openBackendSince !== undefined && now().getTime() - this.#openBackendSince < REFUSED_SECRET_RETRY_MS) return undefined;
    const refused = this.#secretRefused;
    if (refused && now().getTime() - refused.at < REFUSED_SECRET_RETRY_MS) throw new CredentialsUnavailable(refused.why);
    const { where } = http.endpoint(ENROLL_PATH);
    let answer: Awaited<ReturnType<BackendHttp['post']>>;
    try {
      answer = await http.post(ENROLL_PATH, JSON.stringify({ agent_id: agentId }), { headers: { Authorization: `Bearer ${secret.value}` }, maxBodyLength: 1024 });
    } catch (error) {
      throw new CredentialsUnavailable(`cannot enroll at ${where}: ${error instanceof BackendUnreachable ? error.message : String(error)}`);
    }
    if (answer.status === 201) {
      const enrolled = EnrollAnswer.safeParse(tryParseJson(answer.text));
      if (!enrolled.success || enrolled.data.agent_id !== agentId) throw new CredentialsUnavailable(`cannot enroll at ${where}: HTTP 201 without a token for this agent`);
      const kept = this.#options.token.write(enrolled.data.token);
      this.#secretRefused = undefined;
      this.#token = enrolled.data.token;
      log.info(`enrolled at ${where}; the token is kept in ${kept}`);
      return this.#token;
    }
    if (answer.status === 404) {
      // A backend that does not authenticate agents (outpost-server without --enrollment-secrets) takes them without a token.
      if (this.#openBackendSince === undefined) log.info(`${where} does not enroll agents (HTTP 404): talking to it without a token, asking again every ${REFUSED_SECRET_RETRY_MS / 60_000} min`);
      this.#openBackendSince = now().getTime();
      return undefined;
    }
    if (answer.status === 401) {
      const why = `ERR_BACKEND_CREDENTIAL: ${where} refused the enrollment secret (${secret.where}): an administrator sets the organisation's current one with \`outpost --set-enrollment-secret FILE\``;
      this.#secretRefused = { at: now().getTime(), why };
      log.error(`${why}; trying again in ${REFUSED_SECRET_RETRY_MS / 60_000} min`);
      throw new CredentialsUnavailable(why);
    }
    if (answer.status === 403) {
      this.refused(403, answer.text);
      if (this.#revoked) throw new CredentialsUnavailable('this agent was revoked by an operator at the backend', true);
    }
    throw new CredentialsUnavailable(`cannot enroll at ${where}: HTTP ${answer.status}${answer.retryAfter ? ` (retry after ${answer.retryAfter} s)` : ''}: ${reasonOf(answer.text) || 'no reason given'}`);
  }
}

/** The `code` of a refusal's JSON body, if any. */
function codeOf(body: string): string | undefined {
  const parsed = tryParseJson(body);
  const code = typeof parsed === 'object' && parsed !== null && 'code' in parsed ? parsed.code : undefined;
  return typeof code === 'string' ? code : undefined;
}
