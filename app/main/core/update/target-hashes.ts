import { createHash, type Hash } from 'node:crypto';
import { ErrorCode, OutpostError } from '../../../base/errors.js';

/**
 * The algorithms a target's signed description may list that the agent computes. Any other name
 * (an algorithm TUF allows that we do not know, or a weak one like md5) cannot be checked, so it is
 * not counted: a target needs at least one of these, and every one of these it lists must match.
 */
const KNOWN_ALGORITHMS = ['sha256', 'sha512'] as const;
type KnownAlgorithm = (typeof KNOWN_ALGORITHMS)[number];
const LABEL: Readonly<Record<KnownAlgorithm, string>> = { sha256: 'SHA-256', sha512: 'SHA-512' };

const isKnown = (algorithm: string): algorithm is KnownAlgorithm => (KNOWN_ALGORITHMS as readonly string[]).includes(algorithm);

interface HashCheck {
  readonly algorithm: KnownAlgorithm;
  /** Hex, as the signed metadata gives it. */
  readonly expected: string;
  readonly hash: Hash;
}

/** The bytes of one target, hashed as they come with every known algorithm its signed metadata lists. */
export class TargetHashes {
  readonly #what: string;
  readonly #checks: readonly HashCheck[];

  private constructor(what: string, checks: readonly HashCheck[]) {
    this.#what = what;
    this.#checks = checks;
  }

  /** `what` names the target in errors; refused (ERR_UPDATE_VERIFY) if `hashes` lists no known algorithm. */
  static for(what: string, hashes: Readonly<Record<string, string>>): TargetHashes {
    const checks = Object.entries(hashes)
      .filter((entry): entry is [KnownAlgorithm, string] => isKnown(entry[0]))
      .map(([algorithm, expected]): HashCheck => ({ algorithm, expected, hash: createHash(algorithm) }));
    if (checks.length === 0) throw noKnownHash(what, hashes);
    return new TargetHashes(what, checks);
  }

  update(bytes: Buffer): void {
    for (const { hash } of this.#checks) hash.update(bytes);
  }

  /** Throws ERR_UPDATE_VERIFY naming the first listed hash the bytes do not match. */
  verify(): void {
    for (const { algorithm, expected, hash } of this.#checks) {
      if (hash.digest('hex') !== expected.toLowerCase()) {
        throw new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: ${this.#what} does not match its signed ${LABEL[algorithm]} (tampered, or corrupted on the way).`);
      }
    }
  }
}

/**
 * The hash in a target's stored name (TUF consistent snapshots: `<hash>.<name>`): the SHA-256 the
 * release tool names files by, or else the first known one listed.
 */
export function storageHash(what: string, hashes: Readonly<Record<string, string>>): string {
  const known = hashes.sha256 ?? Object.entries(hashes).find(([algorithm]) => isKnown(algorithm))?.[1];
  if (known === undefined) throw noKnownHash(what, hashes);
  return known;
}

function noKnownHash(what: string, hashes: Readonly<Record<string, string>>): OutpostError {
  const listed = Object.keys(hashes);
  return new OutpostError(
    ErrorCode.UPDATE_VERIFY,
    `Update refused: the signed metadata of ${what} lists ${listed.length === 0 ? 'no hash' : `only hashes the agent cannot check (${listed.join(', ')})`}; it needs one of ${KNOWN_ALGORITHMS.join(', ')}.`,
  );
}
