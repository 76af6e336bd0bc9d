import { createCipheriv, createHash } from 'node:crypto';

/** Deterministic pseudo-random bytes (an AES-CTR keystream): the same `seed` gives the same bytes in every run, so a failure can be replayed. */
export function seededBytes(seed: string, length: number): Buffer {
  return createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16)).update(Buffer.alloc(length));
}
