import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IpcCommand } from '../../common/ipc.js';

/** The HMAC-SHA256 proofs of the IPC handshake (see app/common/ipc.ts for the exchange). */

const LABEL = 'outpost-ipc/v1';

export function newNonce(): string {
  return randomBytes(32).toString('base64url');
}

/** What the server shows to prove it knows the secret, bound to both nonces. */
export function serverProof(secret: Buffer, clientNonce: string, serverNonce: string): string {
  return mac(secret, ['server', clientNonce, serverNonce]);
}

/** What the client shows, bound to both nonces (in the other order) and to the command it sends, with its arguments. */
export function clientProof(secret: Buffer, serverNonce: string, clientNonce: string, command: IpcCommand, args?: string): string {
  return mac(secret, args === undefined ? ['client', serverNonce, clientNonce, command] : ['client', serverNonce, clientNonce, command, args]);
}

/** Constant-time comparison, so that the time taken tells nothing about how much of a proof was right. */
export function proofsEqual(expected: string, received: string): boolean {
  const a = Buffer.from(expected, 'base64url');
  const b = Buffer.from(received, 'base64url');
  return a.length === b.length && timingSafeEqual(a, b);
}

function mac(secret: Buffer, parts: readonly string[]): string {
  // Length-prefixed parts: no two different lists of parts can produce the same input.
  const hmac = createHmac('sha256', secret).update(LABEL);
  for (const part of parts) hmac.update(`${part.length}:${part}`);
  return hmac.digest('base64url');
}
