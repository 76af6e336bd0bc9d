export interface RateLimitOptions {
  /** Requests per minute per key, and the burst allowed after a quiet minute. */
  readonly perMinute: number;
  readonly now: () => Date;
}

export type Admission = { readonly admitted: true } | { readonly admitted: false; readonly retryAfterS: number; readonly firstRefusal: boolean };

interface Schedule {
  /** When the key's requests so far would be paid off at the allowed rate (ms since the epoch). */
  paidAt: number;
  /** Refused since its last admission: only the first refusal of a run is worth a log line. */
  refusing: boolean;
}

const MINUTE_MS = 60_000;

/**
 * `perMinute` requests per minute per key (an agent id), in bursts of up to `perMinute`: each
 * request adds 1/perMinute of a minute to the key's debt, which time pays off; a request that would
 * put the key more than a minute in debt is refused, told when it would not be (the generic cell
 * rate algorithm: a token bucket kept as one number, free of rounding drift). Keys come from
 * strangers, so a key whose debt is paid (the same as never seen) is forgotten; sweeps run at most
 * once a minute, on use, so there is no timer to own and the map holds about a minute of keys.
 */
export class PerKeyRateLimit {
  readonly #intervalMs: number;
  readonly #now: () => Date;
  readonly #keys = new Map<string, Schedule>();
  #sweptAt: number;

  constructor(options: RateLimitOptions) {
    if (!Number.isInteger(options.perMinute) || options.perMinute < 1) throw new RangeError(`perMinute must be a positive integer, got ${options.perMinute}`);
    this.#intervalMs = MINUTE_MS / options.perMinute;
    this.#now = options.now;
    this.#sweptAt = options.now().getTime();
  }

  /** Admits one request of `key`'s, or says in how many seconds one would be admitted. */
  take(key: string): Admission {
    const now = this.#now().getTime();
    this.#sweep(now);
    const schedule = this.#keys.get(key) ?? { paidAt: now, refusing: false };
    this.#keys.set(key, schedule);
    const paidAt = Math.max(schedule.paidAt, now) + this.#intervalMs;
    if (paidAt - now <= MINUTE_MS) {
      schedule.paidAt = paidAt;
      schedule.refusing = false;
      return { admitted: true };
    }
    const firstRefusal = !schedule.refusing;
    schedule.refusing = true;
    return { admitted: false, retryAfterS: Math.max(1, Math.ceil((paidAt - now - MINUTE_MS) / 1000)), firstRefusal };
  }

  #sweep(now: number): void {
    if (now - this.#sweptAt < MINUTE_MS) return;
    this.#sweptAt = now;
    for (const [key, schedule] of this.#keys) if (schedule.paidAt <= now) this.#keys.delete(key);
  }
}
