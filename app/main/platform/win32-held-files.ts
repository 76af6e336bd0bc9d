/**
 * Windows: the files under a folder that other processes hold, and who holds them
 * (Platform.findHeldFiles). Windows refuses to rename a folder while a file below it is in use, which
 * is what the updater's backup step runs into (antivirus, an Explorer preview, a stuck old process);
 * Wine renames such a folder anyway, so the updater asks file by file, before it renames.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describeError, errnoCode } from '../../base/errors.js';
import type { FileHolder, HeldFile } from './platform.js';
import { processesHolding } from './win32-restart-manager.js';

export const DEFAULT_HELD_FILES_LIMIT = 20;

/**
 * Up to this many held files, each file gets a Restart Manager session of its own, which names exactly
 * its holders. Beyond it, one session answers for all of them (sessions cost a registry write each and
 * the system allows 64 at a time), and every file gets that combined list.
 */
export const PER_FILE_SESSIONS_MAX = 5;

/**
 * libuv's UV_FS_O_EXLOCK (include/uv/win.h): open with share mode 0. Node hands numeric open flags to
 * libuv unchanged but does not list this one in fs.constants.
 */
export const UV_FS_O_EXLOCK = 0x1000_0000;

/** The probe's opens, in order: exclusive with write access, then exclusive read-only (see isHeldOpen). */
export const PROBE_FLAGS = [fs.constants.O_RDWR | UV_FS_O_EXLOCK, fs.constants.O_RDONLY | UV_FS_O_EXLOCK] as const;

export type OpenAndClose = (file: string, flags: number) => void;

const openAndClose: OpenAndClose = (file, flags) => fs.closeSync(fs.openSync(file, flags));

/**
 * Whether another process holds `file`, from exclusive opens (share mode 0), each closed at once;
 * nothing is written, so the file and its times stay as they were:
 * - With write access first. Any open handle, whatever its sharing, makes a share-mode-0 open fail
 *   with ERROR_SHARING_VIOLATION (EBUSY). The image of a running .exe or a loaded .dll has no handle
 *   once loaded; only an open that asks for write access fails on it (EBUSY too). Measured under
 *   Wine 8: a running exe opens exclusively read-only, but not with write access; a file another
 *   process opened, plainly or exclusively, gives EBUSY both ways.
 * - EPERM or EACCES (ERROR_ACCESS_DENIED: the read-only attribute, an ACL without write, controlled
 *   folder access): read-only again, which still sees every handle (not a loaded image).
 * - Refused read-only too, or any other error (ENOENT: removed meanwhile): not held. Access is checked
 *   before sharing, so a refusal says nothing about other handles, and there would be no holder to
 *   name: the rename reports a folder it may not move by itself.
 */
export function isHeldOpen(file: string, open: OpenAndClose = openAndClose): boolean {
  for (const flags of PROBE_FLAGS) {
    try {
      open(file, flags);
      return false;
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EBUSY') return true;
      if (code !== 'EPERM' && code !== 'EACCES') return false;
    }
  }
  return false;
}

/**
 * Regular files under `dir`, depth first. Links are not followed: Node's readdir on Windows reports
 * every reparse point (symbolic link, junction) as a link, never as a folder or a file. Folders that
 * cannot be read are skipped.
 */
function* filesUnder(dir: string): Generator<string> {
  const pending = [dir];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(next, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      const full = path.join(next, entry.name);
      if (entry.isDirectory()) pending.push(full);
      else if (entry.isFile()) yield full;
    }
  }
}

export interface HeldFilesProbes {
  /** Whether another process holds the file; default isHeldOpen. */
  readonly isHeld?: (file: string) => boolean;
  /** The processes holding any of the files; default the Restart Manager. May throw. */
  readonly holdersOf?: (files: readonly string[]) => FileHolder[];
}

/**
 * Platform.findHeldFiles on Windows: the first `limit` held files under `dir` (walked as filesUnder
 * says), each with its holders from the Restart Manager: exactly its own when at most
 * PER_FILE_SESSIONS_MAX files are held, otherwise the holders of all of them together. A Restart
 * Manager that fails (`unasked` says why) or, as Wine's, answers nothing leaves the holders empty and the files reported:
 * knowing that a file is held matters more than who holds it, and the caller logs what it gets.
 */
export function findHeldFilesWin32(dir: string, limit: number = DEFAULT_HELD_FILES_LIMIT, probes: HeldFilesProbes = {}): HeldFile[] {
  const isHeld = probes.isHeld ?? isHeldOpen;
  const holdersOf = probes.holdersOf ?? processesHolding;
  const held: string[] = [];
  for (const file of filesUnder(path.resolve(dir))) {
    if (held.length >= limit) break;
    if (isHeld(file)) held.push(file);
  }
  const ask = (files: readonly string[]): Pick<HeldFile, 'holders' | 'unasked'> => {
    try {
      return { holders: holdersOf(files) };
    } catch (error) {
      return { holders: [], unasked: describeError(error) };
    }
  };
  if (held.length <= PER_FILE_SESSIONS_MAX) return held.map((file) => ({ path: file, ...ask([file]) }));
  const answer = ask(held);
  return held.map((file) => ({ path: file, ...answer }));
}
