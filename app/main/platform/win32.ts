import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, OutpostError, errnoCode } from '../../base/errors.js';
import { cannotCreateStorage } from '../../base/storage-errors.js';
import type { CredentialStore } from './platform.js';
import { keyringStore } from './keyring-store.js';
import { waitUntilGone } from '../../base/process-liveness.js';
import type { AutostartStore, HeldFile, InstalledEntryUpdate, IpcEndpoint, Platform, StorageSecurity } from './platform.js';
import { registryRunValue } from './win32-autostart.js';
import { findHeldFilesWin32 } from './win32-held-files.js';
import { isUserAdmin, processCreationTime, systemDirectory } from './win32-native.js';
import { type RegExe, regExe } from './win32-reg.js';
import { folderSizeKb, updateUninstallEntries } from './win32-uninstall-entry.js';

/** Well-known SIDs: language-independent, unlike the names icacls prints. */
export const SID = {
  SYSTEM: 'S-1-5-18',
  ADMINISTRATORS: 'S-1-5-32-544',
  USERS: 'S-1-5-32-545',
  AUTHENTICATED_USERS: 'S-1-5-11',
  EVERYONE: 'S-1-1-0',
} as const;

export interface CommandResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly error?: Error;
}

/** Runs a system tool; injected so that tests can see the exact command lines built. */
export type CommandRunner = (file: string, args: readonly string[]) => CommandResult;

export const runCommand: CommandRunner = (file, args) => {
  const result = spawnSync(file, args, { encoding: 'utf8', windowsHide: true, timeout: 30_000 });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', ...(result.error ? { error: result.error } : {}) };
};

/**
 * The icacls invocations that give the storage folder a protected DACL (no inherited entries) with
 * full control, inherited by everything inside, for exactly: SYSTEM and Administrators, plus the user
 * for a per-user folder. Per machine, the owner becomes Administrators. Grants to Everyone,
 * Authenticated Users and Users that an earlier hand may have added are removed.
 */
export function storageAclCommands(dir: string, elevated: boolean, userSid: string | null): string[][] {
  const full = (sid: string) => `*${sid}:(OI)(CI)F`;
  const grants = [full(SID.SYSTEM), full(SID.ADMINISTRATORS)];
  if (!elevated && userSid) grants.push(full(userSid));
  return [
    ...(elevated ? [[dir, '/setowner', `*${SID.ADMINISTRATORS}`]] : []),
    [dir, '/inheritance:r', '/grant:r', ...grants],
    [dir, '/remove:g', `*${SID.EVERYONE}`, `*${SID.AUTHENTICATED_USERS}`, `*${SID.USERS}`],
  ];
}

export class Win32Platform implements Platform {
  readonly name = 'win32';
  readonly #env: NodeJS.ProcessEnv;
  readonly #run: CommandRunner;

  constructor(env: NodeJS.ProcessEnv, run: CommandRunner = runCommand) {
    this.#env = env;
    this.#run = run;
  }

  isElevated(): boolean {
    return isUserAdmin();
  }

  defaultStorageDir(elevated: boolean): string {
    if (elevated) return path.win32.join(this.#env.ProgramData || this.#env.ALLUSERSPROFILE || 'C:\\ProgramData', 'Outpost');
    const localAppData = this.#env.LOCALAPPDATA || path.win32.join(this.#env.USERPROFILE || os.homedir(), 'AppData', 'Local');
    return path.win32.join(localAppData, 'Outpost');
  }

  secureDirectory(dir: string, elevated: boolean): StorageSecurity {
    let created = false;
    try {
      created = fs.mkdirSync(dir, { recursive: true }) !== undefined;
    } catch (error) {
      throw cannotCreateStorage(dir, error);
    }
    if (!fs.statSync(dir).isDirectory()) {
      throw new OutpostError(ErrorCode.STORAGE_UNSAFE, `The storage path ${dir} is not a folder. Remove it or set OUTPOST_HOME to a folder.`, {
        details: { dir },
      });
    }
    const userSid = elevated ? null : this.#currentUserSid();
    // The DACL is applied at every start rather than checked: reading a DACL back means parsing
    // localized icacls output, while setting it is exact. If we may not set it (the folder belongs to
    // someone else), icacls fails and we refuse to run there.
    for (const args of storageAclCommands(dir, elevated, userSid)) {
      const result = this.#run('icacls', args);
      if (result.status !== 0) {
        throw new OutpostError(
          ErrorCode.STORAGE_UNSAFE,
          `Cannot restrict the storage folder ${dir} to ${elevated ? 'SYSTEM and Administrators' : 'this user'} (icacls ${args.slice(1).join(' ')} failed: ${(result.stderr || result.stdout || result.error?.message || '').trim()}); refusing to run in a folder others may control.`,
          { details: { dir, status: result.status } },
        );
      }
    }
    const who = elevated ? 'SYSTEM, Administrators' : `SYSTEM, Administrators, ${userSid}`;
    return { created, permissions: `protected DACL: full control for ${who}`, tightened: [] };
  }

  credentialStore(): CredentialStore {
    return keyringStore('Windows Credential Manager');
  }

  ipcEndpoint(storageRoot: string): IpcEndpoint {
    // Windows paths are case-insensitive: C:\ProgramData\Outpost and c:\programdata\outpost are one folder.
    const scope = createHash('sha256').update(path.win32.resolve(storageRoot).toLowerCase()).digest('hex').slice(0, 16);
    return { path: `\\\\.\\pipe\\outpost-${scope}`, isFile: false, scope };
  }

  isProcessAlive(pid: number): boolean {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return errnoCode(error) === 'EPERM';
    }
  }

  processStartTime(pid: number): string | null {
    return processCreationTime(pid);
  }

  async stopProcess(pid: number): Promise<void> {
    if (!this.isProcessAlive(pid)) return;
    try {
      process.kill(pid); // libuv: TerminateProcess, whatever the signal
    } catch {
      return; // already gone
    }
    await waitUntilGone(pid, (p) => this.isProcessAlive(p));
  }

  autostart(elevated: boolean): AutostartStore {
    return registryRunValue(elevated ? 'HKLM' : 'HKCU', this.#reg(ErrorCode.AUTOSTART));
  }

  recordInstalledVersion(installDir: string, version: string): InstalledEntryUpdate[] {
    return updateUninstallEntries(this.#reg(ErrorCode.INSTALL_ENTRY), installDir, version, { sizeKb: () => folderSizeKb(installDir), elevated: () => this.isElevated() });
  }

  openUrlCommand(url: string): { command: string; args: string[] } {
    // Not `cmd /c start`: cmd would read the URL's & and ^ as its own syntax.
    return { command: path.join(systemDirectory(), 'rundll32.exe'), args: ['url.dll,FileProtocolHandler', url] };
  }

  findHeldFiles(dir: string, limit?: number): HeldFile[] {
    return findHeldFilesWin32(dir, limit);
  }

  /** reg.exe from the system folder (not whichever one PATH finds first); its failures carry `code`. */
  #reg(code: ErrorCode): RegExe {
    return regExe(this.#run, () => path.win32.join(systemDirectory(), 'reg.exe'), code);
  }

  #currentUserSid(): string {
    const result = this.#run('whoami', ['/user', '/fo', 'csv', '/nh']);
    const sid = /"(S-1-[\d-]+)"\s*$/.exec(result.stdout.trim())?.[1];
    if (result.status !== 0 || !sid) {
      throw new OutpostError(ErrorCode.PLATFORM_CALL, `Cannot find this user's SID (whoami /user failed: ${(result.stderr || result.stdout).trim()}).`);
    }
    return sid;
  }
}
