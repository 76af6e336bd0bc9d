import * as z from 'zod';

/**
 * How an agent becomes known to a backend that authenticates its agents (outpost-server
 * --enrollment-secrets), used by both ends (server/agent-auth.ts, app/main/core/backend/agent-credentials.ts).
 *
 * 1. The installer gives the agent its organisation's enrollment secret (`outpost --set-enrollment-secret FILE`).
 * 2. The agent enrolls once: `POST /enroll`, `Authorization: Bearer <enrollment secret>`, body
 *    EnrollRequest. The backend answers 201 with an EnrollAnswer: a token of the agent's own.
 * 3. Every report (`POST /reports`) and the push channel (`/ws` upgrade) carry
 *    `Authorization: Bearer <token>`.
 *
 * What the answers mean to the agent (the same on /enroll, /reports and /ws):
 * - 401: the credential is not known (a token the backend no longer has, a wrong enrollment
 *   secret): a token is forgotten and the agent enrolls again; a refused secret needs its administrator.
 * - 403 with code AGENT_REVOKED: an operator revoked this agent; it stops asking until restarted.
 * - 429: a quota (Retry-After says when to come back).
 * The TUF feed stays public: its security rests on its signatures, not on who may download it.
 */
export const ENROLL_PATH = '/enroll';

/** 32 random bytes, base64url: what a backend hands out, and the shape of a secret it accepts. */
export const AGENT_TOKEN = /^[A-Za-z0-9_-]{43}$/;
/** An organisation's enrollment secret: at least 32 characters of base64url (`outpost-server new-enrollment-secret` makes one). */
export const ENROLLMENT_SECRET = /^[A-Za-z0-9_-]{32,256}$/;

/** The agent's stable id, as in its reports (app/common/reports.ts). */
export const AgentId = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/);

export const EnrollRequest = z.strictObject({ agent_id: AgentId });
export type EnrollRequest = z.infer<typeof EnrollRequest>;

export const EnrollAnswer = z.strictObject({ agent_id: AgentId, token: z.string().regex(AGENT_TOKEN) });
export type EnrollAnswer = z.infer<typeof EnrollAnswer>;

/** The `code` of a 403 body `{ "error": "...", "code": "AGENT_REVOKED" }`: nothing more is accepted from this agent. */
export const AGENT_REVOKED = 'AGENT_REVOKED';

/** `Authorization: Bearer <credential>` -> the credential, or undefined when the header is absent or another scheme. */
export function bearerCredential(header: string | undefined): string | undefined {
  const match = /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(header ?? '');
  return match?.[1];
}

