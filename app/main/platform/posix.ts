import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeFsError, ErrorCode, errnoCode, OutpostError } from '../../base/errors.js';
import { waitUntilGone } from '../../base/process-liveness.js';
import { cannotCreateStorage } from '../../base/storage-errors.js';
import type { AutostartStore, CredentialStore, HeldFile, InstalledEntryUpdate, IpcEndpoint, Platform, StorageSecurity } from './platform.js';
import { keyringStore } from './keyring-store.js';

/**
 * What Linux and macOS share: euid 0 means elevated, folders are 0700 and owned by us, the IPC
 * endpoint is a Unix socket, open files never block a rename, and processes stop on SIGTERM. Each OS
 * adds where its storage lives, its credential store, and how it tells a process's start time.
 */
export abstract class PosixPlatform implements Platform {
  abstract readonly name: 'linux' | 'darwin';
  protected readonly env: NodeJS.ProcessEnv;
  readonly #credentialStoreName: string;

  constructor(env: NodeJS.ProcessEnv, credentialStoreName: string) {
    this.env = env;
    this.#credentialStoreName = credentialStoreName;
  }

  abstract defaultStorageDir(elevated: boolean): string;
  abstract processStartTime(pid: number): string | null;
  abstract openUrlCommand(url: string): { command: string; args: string[] };
  abstract autostart(elevated: boolean): AutostartStore;

  isElevated(): boolean {
    return posixIsElevated();
  }

  isProcessAlive(pid: number): boolean {
    return posixIsProcessAlive(pid);
  }

  secureDirectory(dir: string): StorageSecurity {
    return posixSecureDirectory(dir);
  }

  credentialStore(): CredentialStore {
    return keyringStore(this.#credentialStoreName);
  }

  ipcEndpoint(storageRoot: string): IpcEndpoint {
    return posixIpcEndpoint(storageRoot);
  }

  findHeldFiles(): HeldFile[] {
    return posixFindHeldFiles();
  }

  stopProcess(pid: number, graceMs: number): Promise<void> {
    return posixStopProcess(pid, graceMs, (p) => this.isProcessAlive(p));
  }

  /** Installed programs are the package manager's (or a folder's) here: there is no entry of ours to update. */
  recordInstalledVersion(): InstalledEntryUpdate[] | null {
    return null;
  }
}

function posixIsElevated(): boolean {
  return process.geteuid?.() === 0;
}

export function posixIsProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return errnoCode(error) === 'EPERM';
  }
}

/** SIGTERM (a graceful shutdown), then SIGKILL after `graceMs` if it is still there. */
async function posixStopProcess(pid: number, graceMs: number, isAlive: (pid: number) => boolean): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitUntilGone(pid, isAlive);
}


/**
 * Nothing: a POSIX rename moves a directory entry, and files open below it stay open under the new
 * name, whoever holds them.
 */
function posixFindHeldFiles(): HeldFile[] {
  return [];
}

function posixSecureDirectory(dir: string): StorageSecurity {
  let created = false;
  try {
    created = fs.mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined;
  } catch (error) {
    throw cannotCreateStorage(dir, error);
  }
  const stat = fs.statSync(dir);
  const uid = process.geteuid?.() ?? -1;
  const mode = stat.mode & 0o777;
  const octal = (m: number) => `0${m.toString(8).padStart(3, '0')}`;
  if (!stat.isDirectory()) {
    throw new OutpostError(ErrorCode.STORAGE_UNSAFE, `The storage path ${dir} is not a folder. Remove it or set OUTPOST_HOME to a folder.`, {
      details: { dir },
    });
  }
  if (stat.uid !== uid) {
    throw new OutpostError(
      ErrorCode.STORAGE_UNSAFE,
      `The storage folder ${dir} belongs to uid ${stat.uid}, not to this user (uid ${uid}); refusing to run where another user controls the files. Use a folder you own (OUTPOST_HOME).`,
      { details: { dir, owner: stat.uid, uid } },
    );
  }
  if ((mode & 0o022) !== 0) {
    throw new OutpostError(
      ErrorCode.STORAGE_UNSAFE,
      `The storage folder ${dir} is writable by other users (mode ${octal(mode)}); refusing to run, since files planted there could steer the agent. Check its content, then run: chmod 700 '${dir}'.`,
      { details: { dir, mode: octal(mode) } },
    );
  }
  // Only others' bits are taken away: an owner who made the folder read-only (0500) meant it, and
  // is told below that the agent cannot run there, rather than overruled.
  const closed = mode & 0o700;
  const tightened: string[] = [];
  if (closed !== mode) {
    // Readable by others but not writable: nothing can have been planted, so closing it is safe.
    try {
      fs.chmodSync(dir, closed);
    } catch (error) {
      throw cannotWrite(dir, `closed to other users (chmod ${octal(closed)})`, error);
    }
    tightened.push(`mode ${octal(mode)} -> ${octal(closed)}`);
  }
  try {
    // Checked before anything is written in it: root passes permission bits, but not an immutable
    // folder (chattr +i: EPERM) nor a read-only mount (EROFS), which must be named, not hit later.
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (error) {
    throw cannotWrite(dir, 'written', error);
  }
  return { created, permissions: `mode ${octal(closed)}, owner uid ${uid}`, tightened };
}

function cannotWrite(dir: string, what: string, error: unknown): OutpostError {
  return new OutpostError(
    ErrorCode.STORAGE_CREATE,
    `The storage folder ${dir} cannot be ${what}: ${describeFsError(error)}. Make it writable for this user (chmod 700 '${dir}'), or set OUTPOST_HOME to another folder.`,
    { cause: error, details: { dir, errno: errnoCode(error) } },
  );
}

/**
 * Unix socket paths are limited to 104 bytes (macOS) or 108 (Linux), and the server first binds
 * under this path plus a 9-byte suffix (see IpcServer).
 */
const MAX_SOCKET_PATH_BYTES = 90;

function posixIpcEndpoint(storageRoot: string): IpcEndpoint {
  const scope = createHash('sha256').update(storageRoot).digest('hex').slice(0, 16);
  const inside = path.join(storageRoot, 'ipc.sock');
  // A storage folder too deep for a socket path: the temp folder instead. The socket is 0600 and
  // the handshake is mutually authenticated, so a shared folder gives an attacker nothing.
  const socket = Buffer.byteLength(inside) <= MAX_SOCKET_PATH_BYTES ? inside : path.join(os.tmpdir(), `outpost-${scope}.sock`);
  return { path: socket, isFile: true, scope };
}
