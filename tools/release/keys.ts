import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Key, Signature } from '@tufjs/models';

/** The four TUF roles, each with a key of its own: root signs the others' keys and can be kept offline. */
export const ROLES = ['root', 'targets', 'snapshot', 'timestamp'] as const;
export type RoleName = (typeof ROLES)[number];

export interface RoleKey {
  readonly role: RoleName;
  /** The public half as TUF describes it (keyid, ed25519, hex). */
  readonly key: Key;
  readonly privateKey: KeyObject;
}

/** The roles that sign every publication (publish, channel, refresh): their keys stay on the publishing machine. */
export const ONLINE_ROLES = ['targets', 'snapshot', 'timestamp'] as const;
export type OnlineRole = (typeof ONLINE_ROLES)[number];

export type KeySet = Readonly<Record<RoleName, RoleKey>>;
export type OnlineKeys = Readonly<Record<OnlineRole, RoleKey>>;

const keyFile = (dir: string, role: RoleName) => path.join(dir, `${role}.key`);

/** A new Ed25519 key for `role`, written to `<dir>/<role>.key` (PKCS#8 PEM, mode 0600). */
export function generateRoleKey(dir: string, role: RoleName): RoleKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const file = keyFile(dir, role);
  fs.writeFileSync(`${file}.tmp`, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'w' });
  fs.renameSync(`${file}.tmp`, file);
  return { role, key: tufKey(createPublicKey(privateKey)), privateKey };
}

/**
 * The keys of `roles` from the keys folder `dir`, and no others: root.key may be kept offline while
 * the online roles publish. `command` and `why` go into the error that names a missing key.
 */
export function loadKeys<R extends RoleName>(dir: string, roles: readonly R[], command: string, why = ''): Readonly<Record<R, RoleKey>> {
  const keys: Partial<Record<R, RoleKey>> = {};
  for (const role of roles) {
    const file = keyFile(dir, role);
    let pem: string;
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new MissingKeyError(`${command} needs the ${role} key ${file}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? error})${why}`);
    }
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(pem);
    } catch {
      throw new Error(`${file} is not a private key (PEM); ${command} needs the ${role} key there`);
    }
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${file} is not an Ed25519 key`);
    keys[role] = { role, key: tufKey(createPublicKey(privateKey)), privateKey };
  }
  return keys as Readonly<Record<R, RoleKey>>;
}

/** TUF's key object and key id: SHA-256 over the canonical JSON of the public key. */
function tufKey(publicKey: KeyObject): Key {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url').toString('hex');
  // Canonical JSON: keys sorted, no white space; this object is already in that order.
  const canonical = JSON.stringify({ keytype: 'ed25519', keyval: { public: raw }, scheme: 'ed25519' });
  const keyID = createHash('sha256').update(canonical).digest('hex');
  return new Key({ keyID, keyType: 'ed25519', scheme: 'ed25519', keyVal: { public: raw } });
}

/** A signer for Metadata.sign: Ed25519 over the canonical bytes it is given. */
export function signerFor(roleKey: RoleKey): (data: Buffer) => Signature {
  return (data) => new Signature({ keyID: roleKey.key.keyID, sig: sign(null, data, roleKey.privateKey).toString('hex') });
}

/** A key the command needs is not in the keys folder (exit 66, NO_INPUT). */
export class MissingKeyError extends Error {
  override name = 'MissingKeyError';
}
