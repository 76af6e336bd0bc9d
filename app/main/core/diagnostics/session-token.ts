import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The cookie that carries the session once the one-time token has been traded for it, named for the
 * server's port: cookies are not scoped by port, and two `outpost diagnostics` at once (two agents,
 * two admins' terminals) must not overwrite each other's.
 */
export function sessionCookieName(port: number): string {
  return `outpost_session_${port}`;
}

const SECRET_BYTES = 32;

export type Redemption = { readonly ok: true; readonly session: string } | { readonly ok: false; readonly reason: 'used' | 'wrong' };

/**
 * The one-time token of the printed link and the one browser session it opens. The token is in a
 * URL, so it ends up in the terminal's scrollback and the browser's history: it works once, and what
 * the page needs afterwards (its script, its stylesheet, its WebSocket, a reload) rides on an HttpOnly
 * cookie that the page's own scripts cannot read. One token makes one session, so there is never more
 * than one.
 */
export class SessionToken {
  readonly token: string;
  /** Undefined until the token is used. */
  #session: string | undefined;
  readonly #random: (bytes: number) => Buffer;
  readonly #cookie: string;

  constructor(random: (bytes: number) => Buffer, port: number) {
    this.#random = random;
    this.#cookie = sessionCookieName(port);
    this.token = random(SECRET_BYTES).toString('base64url');
  }

  /** Trades the token for the session, the first time it is presented; never again. */
  redeem(candidate: string): Redemption {
    if (!secretsEqual(this.token, candidate)) return { ok: false, reason: 'wrong' };
    if (this.#session !== undefined) return { ok: false, reason: 'used' };
    this.#session = this.#random(SECRET_BYTES).toString('base64url');
    return { ok: true, session: this.#session };
  }

  /** Whether a request's `Cookie` header carries the session. */
  admits(cookieHeader: string | undefined): boolean {
    const session = this.#session;
    if (session === undefined || cookieHeader === undefined) return false;
    // A page of another origin may have set a cookie of the same name (cookies ignore ports): every value is tried.
    return cookieValues(cookieHeader, this.#cookie).some((value) => secretsEqual(session, value));
  }

  /** The `Set-Cookie` header for the session: never sent to another site, never readable by scripts, gone when the browser closes. */
  cookieHeader(session: string): string {
    return `${this.#cookie}=${session}; HttpOnly; SameSite=Strict; Path=/`;
  }
}

/** Compared in constant time; hashing first makes the lengths equal, so a length tells nothing either. */
function secretsEqual(expected: string, received: string): boolean {
  return timingSafeEqual(sha256(expected), sha256(received));
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function cookieValues(header: string, name: string): string[] {
  return header
    .split(';')
    .map((pair) => pair.trim())
    .filter((pair) => pair.startsWith(`${name}=`))
    .map((pair) => pair.slice(name.length + 1));
}
