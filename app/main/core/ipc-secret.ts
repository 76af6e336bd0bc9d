import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readTextIfExists, writeFileAtomic } from '../../base/durable-file.js';
import { describeError, errnoCode, ErrorCode, OutpostError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import { type CredentialStore, SECRET_SERVICE } from '../platform/index.js';

/**
 * The IPC secret: 32 random bytes shared by the agent and the commands that talk to it
 * (`outpost --force`, `outpost status`). It never travels: both sides prove they know it (see
 * app/common/ipc.ts).
 *
 * Where it lives:
 * - a per-user agent keeps it in the OS credential store (Windows Credential Manager, macOS
 *   Keychain, Secret Service), under service "Outpost", account `ipc-<scope>`;
 * - where that store does not answer (headless Linux, a service account), and always for a
 *   per-machine agent (credential stores belong to one user, and the per-machine agent's commands
 *   come from any administrator), it is the file `ipc.secret` in the storage folder, which only the
 *   folder's owner (or SYSTEM and Administrators) can read.
 * The file doubles as the marker of which one is in use: the agent removes it when it uses the
 * store, so a client reads the file when there is one and the store otherwise, and never guesses.
 *
 * Rotation: delete the secret (the file, or the store entry) and restart the agent; a new one is made.
 */

export const SECRET_FILE_NAME = 'ipc.secret';
const SECRET_BYTES = 32;
const ENCODED = /^[A-Za-z0-9_-]{43}$/;

export interface SecretOptions {
  readonly storageRoot: string;
  /** The storage folder's IPC scope (IpcEndpoint.scope): one store entry per folder, so installs never share one. */
  readonly scope: string;
  /** A per-machine agent: file only. */
  readonly elevated: boolean;
  readonly credentials: CredentialStore;
  readonly log: Logger;
}

export interface IpcSecret {
  readonly value: Buffer;
  /** Where it is kept, for the log and `status`: the store's name, or the file's path. */
  readonly where: string;
}

/** The agent's side: the existing secret, or a new one where it belongs. */
export function loadOrCreateIpcSecret(options: SecretOptions): IpcSecret {
  const { log } = options;
  const account = accountOf(options.scope);
  const file = secretFile(options.storageRoot);
  const lookup = usableStore(options);
  if (!lookup.ok) return fileSecret(file, log, lookup.reason);
  const { store } = lookup;
  let encoded = lookup.value;
  const created = encoded === null;
  if (encoded === null) {
    encoded = newSecret();
    try {
      store.set(account, encoded);
    } catch (error) {
      return fileSecret(file, log, `${store.name} refused to store it (${describeError(error)})`);
    }
  }
  const value = decode(encoded, entryName(store, account));
  // The store is in use: no file, so that clients do not read a stale one.
  fs.rmSync(file, { force: true });
  log.info(`IPC secret ${created ? 'created in' : 'read from'} ${store.name}`, { account });
  return { value, where: store.name };
}

/** The client's side: reads the secret the agent uses; never creates one. */
export function readIpcSecret(options: Omit<SecretOptions, 'log'>): IpcSecret {
  const file = secretFile(options.storageRoot);
  const fromFile = readSecretFile(file);
  if (fromFile !== null) return { value: fromFile, where: file };
  const lookup = usableStore(options);
  if (lookup.ok && lookup.value !== null) return { value: decode(lookup.value, entryName(lookup.store, accountOf(options.scope))), where: lookup.store.name };
  const looked = lookup.ok ? `${file} and ${lookup.store.name}` : `${file} (${lookup.reason})`;
  throw new OutpostError(ErrorCode.IPC_SECRET, `No IPC secret found in ${looked}: the agent creates it when it starts; run this as the user the agent runs as.`, {
    details: { file },
  });
}

export function secretFile(storageRoot: string): string {
  return path.join(storageRoot, SECRET_FILE_NAME);
}

type StoreLookup = { ok: true; store: CredentialStore; value: string | null } | { ok: false; reason: string };

function accountOf(scope: string): string {
  return `ipc-${scope}`;
}

function entryName(store: CredentialStore, account: string): string {
  return `the ${store.name} entry "${SECRET_SERVICE}/${account}"`;
}

function usableStore(options: Omit<SecretOptions, 'log'>): StoreLookup {
  const { credentials, elevated } = options;
  const account = accountOf(options.scope);
  if (elevated) return { ok: false, reason: 'a per-machine agent keeps it in its storage folder (credential stores belong to one user)' };
  try {
    return { ok: true, store: credentials, value: credentials.get(account) };
  } catch (error) {
    return { ok: false, reason: `${credentials.name} did not answer (${describeError(error)})` };
  }
}

function fileSecret(file: string, log: Logger, why: string): IpcSecret {
  let value = readSecretFile(file);
  const created = value === null;
  if (value === null) {
    const encoded = newSecret();
    writeFileAtomic(file, `${encoded}\n`, 0o600);
    value = decode(encoded, file);
  }
  log.info(`IPC secret ${created ? 'created in' : 'read from'} ${file}: ${why}`);
  return { value, where: file };
}

function readSecretFile(file: string): Buffer | null {
  let text: string | null;
  try {
    text = readTextIfExists(file);
  } catch (error) {
    throw new OutpostError(ErrorCode.IPC_SECRET, `Cannot read the IPC secret ${file}: ${errnoCode(error) ?? describeError(error)}. Run this as the user the agent runs as.`, {
      cause: error,
    });
  }
  return text === null ? null : decode(text.trim(), file);
}

function newSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

function decode(encoded: string, where: string): Buffer {
  if (!ENCODED.test(encoded)) {
    throw new OutpostError(ErrorCode.IPC_SECRET, `The IPC secret in ${where} is damaged (not ${SECRET_BYTES} bytes of base64url). Delete it and restart the agent to make a new one.`);
  }
  return Buffer.from(encoded, 'base64url');
}
