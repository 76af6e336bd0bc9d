import type { Logger } from '../../../base/logger.js';

export type RefusalKind =
  | 'foreign-host'
  | 'foreign-origin'
  | 'used-token'
  | 'wrong-token'
  | 'no-session'
  | 'too-many-sockets'
  | 'too-many-calls'
  | 'binary-message'
  | 'oversized-message';

/**
 * What the loopback server refused, and why: the first refusal of each kind at warn, later ones of
 * that kind at debug. A hostile page in the user's browser can repeat a refused request as often as
 * it likes; it must not be able to fill the log. Reasons never carry the token or the cookie.
 */
export class RefusalLog {
  readonly #log: Logger;
  readonly #counts = new Map<RefusalKind, number>();

  constructor(log: Logger) {
    this.#log = log;
  }

  refused(kind: RefusalKind, reason: string): void {
    const count = (this.#counts.get(kind) ?? 0) + 1;
    this.#counts.set(kind, count);
    if (count === 1) this.#log.warn(`refused (${kind}): ${reason}`);
    else this.#log.debug(`refused (${kind}, ${count} times so far): ${reason}`);
  }
}
